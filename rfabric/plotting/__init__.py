"""Plotting helpers (matplotlib imported lazily; every function takes an optional ``ax``; never ``plt.show()``)."""
