"""ordermesh chaos testing: the history format (history.py) and its checker (checker.py).

Python 3 standard library only; the rest of client/ is C++ and does not import this.
"""
