//! Layers as tar streams: the changes one step makes, encoded reproducibly.
