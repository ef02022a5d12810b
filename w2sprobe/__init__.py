"""w2sprobe: weak-to-strong generalization research on cached activations."""

__version__ = "0.1.0"
