#!/usr/bin/env bash
# Execute every lesson on this machine's accelerator (CUDA or Apple's MPS), as a learner in
# Colab or on a Mac runs them, once per offline network. On a machine without one it says so
# and exits 0: the test suite already covers the CPU.
#
#   bash scripts/check_devices.sh            # every lesson
#   bash scripts/check_devices.sh notebooks/02_pretrained_resnet.ipynb
#
# EMBEDKIT_STRICT_INPUT=1 also makes every backbone refuse a batch that skipped
# backbone.as_input, so a call that only works by luck on one device fails everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
device=$(python -c "from embedkit.backbones import default_device; print(default_device().type)")
if [ "$device" = "cpu" ]; then
    echo "no accelerator here (torch sees only the CPU); nothing to check beyond the test suite"
    exit 0
fi
python -c "import torch; print('torch', torch.__version__, '| device:', '$device',
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
lessons=("$@")
[ ${#lessons[@]} -eq 0 ] && lessons=(notebooks/[0-9][0-9]_*.ipynb)
status=0
for network in efficientnet_lite0 efficientnet_lite2; do
    echo "== lessons on $device with $network"
    EMBEDKIT_BACKBONE=$network EMBEDKIT_STRICT_INPUT=1 \
        python -m pytest "${lessons[@]}" -q -p no:cacheprovider || status=1
done
exit $status
