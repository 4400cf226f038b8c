"""dmrnet.tools: analysis, reporting and experiment scripts (run as python tools/NAME.py)."""
