"""`tunelab feedback import FILE`: every row is checked against the log first, any bad row is
named by file, row and column with exit 2 and nothing stored; good files land in one go."""

from __future__ import annotations

import json

from test_store_log import make_row

from tunelab.cli.commands import main
from tunelab.store.db import open_db
from tunelab.store.feedback import read_feedback
from tunelab.store.tables import predictions


def logged_db(tmp_path, n: int = 4) -> tuple[str, list[dict]]:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    rows = [make_row(i) for i in range(n)]
    rows[3] |= {"kind": "entities", "output": {"entities": []}, "label": None}
    engine = open_db(url)
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows)
    engine.dispose()
    return url, rows


def stored(url: str) -> list[dict]:
    engine = open_db(url)
    try:
        return read_feedback(engine)
    finally:
        engine.dispose()


def test_a_good_csv_is_stored_with_versions(tmp_path, capsys):
    url, rows = logged_db(tmp_path)
    ids = [r["id"] for r in rows]
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "request_id,label,rating,metadata,text\n"
        f"{ids[0]},neg,,,first text\n"
        f'{ids[1]},pos,5,"{{""who"": ""ann""}}",second\n'
        f"{ids[0]},pos,,,again\n"
    )
    assert main(["feedback", "import", str(csv), "--db", url]) == 0
    out = capsys.readouterr().out
    assert "imported 3 answers about 2 logged inputs" in out and "1 revise" in out
    assert "ignored columns: text" in out
    got = {(r["prediction_id"], r["version"]): r for r in stored(url)}
    assert got[(ids[0], 1)]["label"] == "neg" and got[(ids[0], 2)]["label"] == "pos"
    assert got[(ids[1], 1)]["rating"] == 5.0 and got[(ids[1], 1)]["meta"] == {"who": "ann"}
    assert got[(ids[1], 1)]["source"] == "import:labels.csv"


def test_jsonl_with_entities_and_json_summary(tmp_path, capsys):
    url, rows = logged_db(tmp_path)
    path = tmp_path / "answers.jsonl"
    line = {"request_id": rows[3]["id"], "entities": [{"start": 0, "end": 4, "label": "PER"}]}
    path.write_text(json.dumps(line) + "\n")
    assert main(["feedback", "import", str(path), "--db", url, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["answers"] == 1 and summary["models"] == ["sst2"]
    assert stored(url)[0]["entities"] == [{"start": 0, "end": 4, "label": "PER"}]


def test_bad_rows_are_named_and_nothing_is_stored(tmp_path, capsys):
    url, rows = logged_db(tmp_path)
    ids = [r["id"] for r in rows]
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "request_id,label,entities,rating\n"
        f"{ids[0]},neg,,\n"  # fine
        f"{'e' * 32},neg,,\n"  # row 2: unknown id
        f"{ids[1]},maybe,,\n"  # row 3: not a label of the model
        f'{ids[3]},,"[{{bad",\n'  # row 4: entities not JSON
        f"{ids[2]},,,lots\n"  # row 5: rating not a number
        ",pos,,\n"  # row 6: no id
    )
    assert main(["feedback", "import", str(csv), "--db", url]) == 2
    err = capsys.readouterr().err
    assert f"{csv}, row 2, column 'request_id': no logged input has id '{'e' * 32}'" in err
    assert f"{csv}, row 3, column 'label': 'maybe' is not a label of model 'sst2'" in err
    assert f"{csv}, row 4, column 'entities': not JSON" in err
    assert f"{csv}, row 5, column 'rating': not a number" in err
    assert f"{csv}, row 6, column 'request_id': empty" in err
    assert "nothing imported" in err
    assert stored(url) == []


def test_a_file_without_request_ids_or_missing_is_one_line(tmp_path, capsys):
    url, _ = logged_db(tmp_path)
    csv = tmp_path / "nolabel.csv"
    csv.write_text("id,label\nx,pos\n")
    assert main(["feedback", "import", str(csv), "--db", url]) == 2
    assert "request_id" in capsys.readouterr().err
    assert main(["feedback", "import", str(tmp_path / "none.csv"), "--db", url]) == 2
    assert "file not found" in capsys.readouterr().err
    assert stored(url) == []


def test_list_shows_the_answers(tmp_path, capsys):
    url, rows = logged_db(tmp_path)
    csv = tmp_path / "one.csv"
    csv.write_text(f"request_id,label\n{rows[0]['id']},neg\n")
    assert main(["feedback", "import", str(csv), "--db", url]) == 0
    capsys.readouterr()
    assert main(["feedback", "list", "--db", url]) == 0
    assert rows[0]["id"] in capsys.readouterr().out
    assert main(["feedback", "list", "--db", url, "--model", "other", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
