"""Few-shot anomaly detection with an LLM on windows written as text (TAMA's text modality).

    python make_dataset.py --dataset UCR --mode train --modality text
    python make_dataset.py --dataset UCR --mode test --modality text
    python main_cli_text.py --dataset UCR --normal_reference 1 --LLM GPT-4o

Same flags, outputs and exit codes as main_cli.py; the run log is
data/runs/<subtask>/<dataset>_<LLM>_text.jsonl unless --run_name says otherwise.
"""

from __future__ import annotations

import sys

from lmad.cli import run_main
from main_cli import main

if __name__ == "__main__":
    run_main(lambda argv: main(argv, modality="text"), sys.argv[1:])
