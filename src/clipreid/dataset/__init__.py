"""Data-set preparation: readers per on-disk format (:mod:`.readers`), the synthetic set
(:mod:`.synthetic`), and the manifest every later stage reads (:mod:`.manifest`)."""
