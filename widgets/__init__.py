"""The console's widgets, one job per module.

Pure logic (ring, filters, rates, names, time ranges, feed following) imports no textual,
so it is unit-tested on its own; the widgets build on it and never reach the backend
except through what their screen hands them.
"""
