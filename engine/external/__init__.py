"""Runs trained elsewhere, imported as run folders: an HF Trainer `trainer_state.json` or a TensorBoard log
(`slmtui runs import PATH`, through `python -m engine import-run`)."""
