// The interactive attention view (interpret/attention_html.py): a function of the id of its
// root element, called right after this text; it reads its data from the JSON data block
// (script.tla-data) inside that root, so several views can live on one page. Token text only ever reaches the
// DOM through textContent (never innerHTML).
(function (ROOT_ID) {
  var root = document.getElementById(ROOT_ID);
  var D = JSON.parse(root.querySelector("script.tla-data").textContent);
  var T = D.T, L = D.L, H = D.H, labels = D.labels;
  var STOPS = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  function color(x) {  // x in [0, 1] -> "rgb(...)" on a white-to-blue scale
    x = Math.max(0, Math.min(1, x || 0)) * (STOPS.length - 1);
    var i = Math.min(Math.floor(x), STOPS.length - 2), f = x - i, a = STOPS[i], b = STOPS[i + 1];
    return "rgb(" + [0, 1, 2].map(function (k) { return Math.round(a[k] + f * (b[k] - a[k])); }).join(",") + ")";
  }
  // attentions: uint16 little-endian, (L, H, T, T) row-major, value = q / 65535
  var bin = atob(D.att), att = new Float32Array(bin.length / 2);
  for (var i = 0; i < att.length; i++) att[i] = (bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8)) / 65535;
  var roll = new Float32Array(T * T);
  D.rollout.forEach(function (row, i) { row.forEach(function (v, j) { roll[i * T + j] = v; }); });
  var cache = {};
  function matrix() {  // the (T*T) map the controls select
    if (S.layer === "rollout") return roll;
    var key = S.layer + ":" + S.head, TT = T * T;
    if (cache[key]) return cache[key];
    var m, base = S.layer * H * TT;
    if (S.head === "mean") {
      m = new Float32Array(TT);
      for (var h = 0; h < H; h++) for (var k = 0; k < TT; k++) m[k] += att[base + h * TT + k] / H;
    } else m = att.subarray(base + S.head * TT, base + (S.head + 1) * TT);
    return (cache[key] = m);
  }
  // sink: leave column 0 out of colour maxima (a causal LM's first token soaks up most weight)
  var S = {layer: L - 1, head: "mean", rel: true, sink: !!D.causal, sel: -1, hover: -1};
  function fmt(v) { return v === 0 || v >= 0.001 ? v.toFixed(4) : v.toExponential(2); }
  function q(role) { return root.querySelector("[data-role=" + role + "]"); }
  function option(sel, value, text) {
    var o = document.createElement("option"); o.value = value; o.textContent = text; sel.appendChild(o);
  }
  var layerSel = q("layer"), headSel = q("head"), relBox = q("rel"), sinkBox = q("sink");
  sinkBox.checked = S.sink;
  for (var l = 0; l < L; l++) option(layerSel, l, "Layer " + l);
  option(layerSel, "rollout", "Rollout (all layers)");
  option(headSel, "mean", "Mean of heads");
  for (var h = 0; h < H; h++) option(headSel, h, "Head " + h);
  layerSel.value = String(S.layer);
  layerSel.onchange = function () {
    S.layer = layerSel.value === "rollout" ? "rollout" : +layerSel.value;
    headSel.disabled = S.layer === "rollout"; draw();
  };
  headSel.onchange = function () { S.head = headSel.value === "mean" ? "mean" : +headSel.value; draw(); };
  relBox.onchange = function () { S.rel = relBox.checked; draw(); };
  sinkBox.onchange = function () { S.sink = sinkBox.checked; draw(); };
  function select(i) { S.sel = S.sel === i ? -1 : i; draw(); }

  // token strip: click a token to see what it attends to
  var strip = q("text"), chips = labels.map(function (t, i) {
    var s = document.createElement("span");
    s.className = "tla-tok" + (D.special[i] ? " tla-special" : "");
    s.textContent = t; s.title = "#" + i + " " + D.tokens[i];
    s.onclick = function () { select(i); };
    strip.appendChild(s); return s;
  });

  // heatmap on a canvas
  var canvas = q("canvas"), tip = q("tip"), ctx = canvas.getContext("2d");
  var cell = Math.max(3, Math.min(32, Math.floor(680 / T)));
  var font = Math.max(9, Math.min(12, cell - 3)), step = Math.max(1, Math.ceil((font + 2) / cell));
  ctx.font = font + "px ui-monospace,Menlo,Consolas,monospace";
  var lw = 0;
  labels.forEach(function (t) { lw = Math.max(lw, ctx.measureText(t.slice(0, 16)).width); });
  var left = Math.ceil(lw) + 10, top = Math.ceil(lw) + 10, size = T * cell;
  var W = left + size + 8, Hh = top + size + 8, dpr = window.devicePixelRatio || 1;
  canvas.width = W * dpr; canvas.height = Hh * dpr;
  canvas.style.width = W + "px"; canvas.style.height = Hh + "px";
  function rowMax(m, i) {  // largest weight of row i the colour scale should reach
    var mx = 0;
    for (var j = S.sink && T > 1 ? 1 : 0; j < T; j++) mx = Math.max(mx, m[i * T + j]);
    return mx || 1;
  }
  var vcache = {};
  function vmax(m) {  // top of the colour scale
    if (!S.rel) return 1;
    var key = S.layer + ":" + S.head + ":" + S.sink;
    if (vcache[key]) return vcache[key];
    var mx = 0;
    if (!S.sink) { for (var k = 0; k < m.length; k++) mx = Math.max(mx, m[k]); }
    else {  // 98th percentile of the weights off the first column (and inside the causal mask)
      var v = [];
      for (var i = 0; i < T; i++) for (var j = 1; j < T; j++)
        if (!(D.causal && j > i)) v.push(m[i * T + j]);
      v.sort(function (a, b) { return a - b; });
      mx = v.length ? v[Math.floor(0.98 * (v.length - 1))] : 1;
    }
    return (vcache[key] = mx || 1);
  }
  function drawHeat(m, mx) {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, Hh);
    for (var i = 0; i < T; i++) for (var j = 0; j < T; j++) {
      ctx.fillStyle = D.causal && j > i ? "#eceef2" : color(m[i * T + j] / mx);
      ctx.fillRect(left + j * cell, top + i * cell, cell, cell);
    }
    ctx.font = font + "px ui-monospace,Menlo,Consolas,monospace";
    ctx.textBaseline = "middle";
    for (i = 0; i < T; i++) {
      var on = i === S.sel || i === S.hover;
      if (i % step && !on) continue;
      var t = labels[i].slice(0, 16);
      ctx.fillStyle = i === S.sel ? "#d9480f" : D.special[i] ? "#8a5a00" : "#1d2330";
      ctx.textAlign = "right"; ctx.fillText(t, left - 5, top + (i + 0.5) * cell);
      ctx.save(); ctx.translate(left + (i + 0.5) * cell, top - 5); ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left"; ctx.fillText(t, 0, 0); ctx.restore();
    }
    if (S.sel >= 0) {
      ctx.strokeStyle = "#d9480f"; ctx.lineWidth = 2;
      ctx.strokeRect(left, top + S.sel * cell, size, cell);
    }
  }
  function cellAt(ev) {
    var r = canvas.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    var i = Math.floor((y - top) / cell), j = Math.floor((x - left) / cell);
    return {x: x, y: y, i: i >= 0 && i < T ? i : -1, j: j >= 0 && j < T ? j : -1, inX: x >= left, inY: y >= top};
  }
  canvas.onmousemove = function (ev) {
    var c = cellAt(ev), m = matrix();
    if (c.i >= 0 && c.j >= 0 && c.inX && c.inY) {
      var masked = D.causal && c.j > c.i;
      tip.textContent = labels[c.i] + " \u2192 " + labels[c.j] + ": " + fmt(m[c.i * T + c.j]) +
        "   (#" + c.i + " \u2192 #" + c.j + (masked ? ", masked: a token sees only earlier ones" : "") + ")";
      tip.style.left = (c.x + 14) + "px"; tip.style.top = (c.y + 14) + "px"; tip.style.display = "block";
      canvas.style.cursor = "pointer";
    } else { tip.style.display = "none"; canvas.style.cursor = c.i >= 0 && !c.inX ? "pointer" : "default"; }
  };
  canvas.onmouseleave = function () { tip.style.display = "none"; };
  canvas.onclick = function (ev) { var c = cellAt(ev); if (c.i >= 0 && c.inY) select(c.i); };

  // token-to-token lines (bertviz-like): hover or click a token on the left
  var svg = q("lines"), NS = "http://www.w3.org/2000/svg", rh = T > 60 ? 14 : 18, lx = 150, rx = 290;
  svg.setAttribute("width", rx + 150); svg.setAttribute("height", T * rh + 24);
  function el(parent, name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return parent.appendChild(e);
  }
  var ypos = function (i) { return 24 + i * rh + rh / 2; };
  el(svg, "text", {x: lx, y: 12, "text-anchor": "end", fill: "#5b6475"}, "from");
  el(svg, "text", {x: rx, y: 12, fill: "#5b6475"}, "to");
  var lineGroup = el(svg, "g", {}), fromText = [], toText = [];
  labels.forEach(function (t, i) {  // built once; draw() only restyles them
    var a = el(svg, "text", {x: lx, y: ypos(i) + 4, "text-anchor": "end"}, t.slice(0, 18));
    a.onmouseenter = function () { S.hover = i; draw(); };
    a.onmouseleave = function () { S.hover = -1; draw(); };
    a.onclick = function () { select(i); };
    fromText.push(a);
    toText.push(el(svg, "text", {x: rx, y: ypos(i) + 4}, t.slice(0, 18)));
  });
  function rowOf(m, i) { return Array.prototype.slice.call(m, i * T, (i + 1) * T); }
  function drawLines(m, mx) {
    while (lineGroup.firstChild) lineGroup.removeChild(lineGroup.firstChild);
    var focus = S.hover >= 0 ? S.hover : S.sel;
    for (var i = 0; i < T; i++) {
      if (focus >= 0 && i !== focus) continue;
      var row = rowOf(m, i), rmx = rowMax(m, i);
      var order = row.map(function (v, j) { return j; }).sort(function (a, b) { return row[b] - row[a]; });
      order.slice(0, focus >= 0 ? T : 3).forEach(function (j) {  // all of one token's, else top 3 each
        var w = Math.min(1, focus >= 0 ? row[j] / rmx : row[j] / mx);
        if (w < 0.02) return;
        el(lineGroup, "line", {x1: lx + 6, y1: ypos(i), x2: rx - 6, y2: ypos(j), stroke: "#1f6fb5",
          "stroke-opacity": (0.1 + 0.9 * w).toFixed(3), "stroke-width": (0.5 + 3 * w).toFixed(2)});
      });
    }
    var frow = focus >= 0 ? rowOf(m, focus) : null, fmx = frow ? rowMax(m, focus) : 1;
    for (i = 0; i < T; i++) {
      fromText[i].setAttribute("class", i === S.sel ? "tla-sel" : "");
      toText[i].setAttribute("fill-opacity", frow ? (0.3 + 0.7 * Math.min(1, frow[i] / fmx)).toFixed(2) : "1");
    }
  }
  function draw() {
    var m = matrix(), mx = vmax(m);
    drawHeat(m, mx); drawLines(m, mx);
    q("max").textContent = mx >= 0.001 ? mx.toFixed(3) : mx.toExponential(2);
    var rmx = S.sel >= 0 ? rowMax(m, S.sel) : 1;
    chips.forEach(function (s, j) {
      var w = S.sel >= 0 ? Math.min(1, m[S.sel * T + j] / rmx) : 0;
      s.style.background = S.sel >= 0 ? color(w) : "";
      s.style.color = w > 0.6 ? "#fff" : "";
      s.classList.toggle("tla-sel", j === S.sel);
      s.title = "#" + j + " " + D.tokens[j] + (S.sel >= 0 ? "\n" + labels[S.sel] + " \u2192 " + labels[j] +
        ": " + fmt(m[S.sel * T + j]) : "");
    });
    q("hint").textContent = S.sel >= 0 ? "Token #" + S.sel + " \u201c" + labels[S.sel] +
      "\u201d selected: shading shows what it attends to (click it again to clear)." :
      "Click a token (or a heatmap row) to see what it attends to; hover a cell for its weight.";
  }
  q("bar").style.background = "linear-gradient(to right," + [0, 0.25, 0.5, 0.75, 1].map(color).join(",") + ")";
  draw();
})
