"""The inference path, in the order an image takes: ``preprocess`` (checks, image kind, model
input), ``predict`` (tiled network maps), ``sizing`` (a shrunk second pass for large nuclei),
``postprocess`` (watershed instances), ``measure``/``shape`` (the per-nucleus table),
``pipeline`` (``segment()``) and ``stack`` (planes of a stack)."""
