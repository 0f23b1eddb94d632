"""Unit tests of the chaos checker (chaos), on hand-made histories."""
