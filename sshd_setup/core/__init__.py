"""The pure core: parse, plan, render, findings. Nothing in here performs I/O."""
