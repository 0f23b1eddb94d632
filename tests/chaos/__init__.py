"""Unit tests of the chaos checker (client/chaos), on hand-made histories."""
