"""Run by ``torch.distributed.run`` in the runner tests: a gloo process
group, then the toy pipeline of ``argv[1]`` (a JSON stage list) in the work
dir ``argv[2]`` on every rank; each rank writes the records it got to
``<work dir>/records.rank<r>.json``."""
import json
import sys

import torch.distributed as torch_dist

import runner_toy_stages  # noqa: F401  (registers the toy stages)
from qaclims_mm.pipeline import WSSSPipelineRunner

if __name__ == '__main__':
    torch_dist.init_process_group('gloo')
    runner = WSSSPipelineRunner(sys.argv[2], json.loads(sys.argv[1]),
                                launcher='pytorch', progress=False)
    records = runner.train()
    with open(f'{sys.argv[2]}/records.rank{torch_dist.get_rank()}.json',
              'w') as f:
        json.dump(records, f)
    torch_dist.destroy_process_group()
