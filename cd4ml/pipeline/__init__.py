"""The problem-independent machinery: split, model factory, evaluation, and the run that wires them."""
