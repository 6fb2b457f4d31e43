"""embedkit: the course's small, tested toolkit for image embeddings.

One module per job; import the one you need (``from embedkit.images import load_rgb``):

- ``images``: open any real-world image file as RGB, or say why it cannot be opened.
- ``backbones``: a pretrained network with its classification head removed.
- ``embeddings``: embed many images in batches, reporting files that fail.
- ``similarity``: cosine similarity, all pairs, top-k and near-duplicate search in chunks.
- ``duplicates``: file, pixel and perceptual hashes; duplicate groups; train/test leaks.
- ``evaluation``: precision and recall of found duplicates against ground truth.
- ``plots``: image grids, similarity heatmaps, precision-recall curves.
"""

__version__ = "0.1.0"
