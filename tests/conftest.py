"""Test-wide settings: torch runs one intra-op thread (on a busy 2-core machine the suite took 437 s with torch's
default threads and 212 s pinned), and hypothesis keeps no example database in the checkout."""
import torch

torch.set_num_threads(1)
