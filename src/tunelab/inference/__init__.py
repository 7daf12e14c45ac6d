"""Forward passes and generation shared by evaluation, prediction, explanation and serving."""
