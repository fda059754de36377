"""faultlab's fault-tolerance patterns: one module per pattern, independent of the world."""
