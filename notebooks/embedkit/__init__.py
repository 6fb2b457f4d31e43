"""embedkit: the course's small, tested toolkit for image embeddings.

One module per job; import the one you need (``from embedkit.images import load_rgb``):

- ``folders``: the image files in a folder, each once, and why the others could not be listed.
- ``images``: open any real-world image file as RGB (at reduced size for big photos), or say why not.
- ``backbones``: a pretrained network with its classification head removed; one entry per network.
- ``embeddings``: embed many images in batches, reporting files that fail.
- ``similarity``: cosine similarity, all pairs, top-k and near-duplicate search in chunks.
- ``duplicates``: file, pixel and perceptual hashes; exact-duplicate groups.
- ``pairs``: pairs of items and the groups they form (connected groups, group labels).
- ``splits``: train/test leaks and the group-aware re-split that removes them.
- ``evaluation``: precision and recall against ground truth; the threshold rule, cross-validated.
- ``retrieval``: recall@k and mean average precision of neighbour rankings.
- ``maps``: 2-D projections of embeddings and thumbnail scatter plots.
- ``dataset``: the bundled image set and the embeddings lessons share.
- ``plots``: image grids, similarity heatmaps, precision-recall curves.
- ``curate`` (with ``findings``, ``report`` and ``labelling``): curate any folder;
  ``python -m embedkit curate``. ``curate`` computes a ``findings.Findings``, ``report`` shows one.
- ``distributed``: the same embedding as a Ray Data pipeline writing Parquet.
- ``ann``: FAISS indexes and the recall of approximate near-duplicate search.
- ``variants``: edited copies of images with known groups, for tests and lessons.
- ``selfcheck``: the checks of the lessons' exercises, one module per lesson.
"""

__version__ = "0.2.0"
