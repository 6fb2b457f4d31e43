"""Build the small messy photo folder of lesson 06 (see ``embedkit.variants.make_messy_folder``).

python scripts/make_messy_folder.py DEST      # writes DEST/ and prints the truth as JSON
"""

from __future__ import annotations

import json
import sys

from embedkit.variants import make_messy_folder

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/make_messy_folder.py DEST")
    print(json.dumps(make_messy_folder(sys.argv[1]), indent=1, ensure_ascii=False))
