"""What runs in the notebook's kernel: the `%deploy` magics, guessing a cell's inputs and
outputs, and capturing the interpreter state a cell needs."""
