"""Files in and out: reading images (``images``), atomic writers (``writers``), the result
files of a segmentation (``results``) and overlay pictures (``overlay``)."""
