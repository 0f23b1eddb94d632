"""ordermesh chaos testing: the runner (run.py), the history format (history.py) and its checker
(checker.py). Python 3 standard library only; run from the repository root
(`python3 -m chaos.run`, `python3 -m chaos.checker`) or through scripts/chaos.sh.
"""
