"""Technique studies' results: pure statistics over the trials of each variant (numpy and
scipy; no database, no TensorFlow). ``stats`` summarizes a variant over its seeds and compares
it with the baseline variant; ``reading`` says it in words."""
