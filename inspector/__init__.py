"""http-inspector: an interactive HTTP debugging proxy and inspector."""
