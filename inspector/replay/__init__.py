"""Replay: the engine (engine.py, with request.py preparing what is sent) and its CLI (cli.py)."""
