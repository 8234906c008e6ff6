"""MVGFormer, one readable module per component (see chapters 3-6)."""
