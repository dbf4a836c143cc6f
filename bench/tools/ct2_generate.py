"""Greedy generation with CTranslate2 for `npm run bench:peers`: reads a JSON request on stdin
({"model", "computeType", "maxBatchSize", "threads", "maxNewTokens", "prompts": [[token ids]]}), generates every
prompt in one request list, and writes JSON on stdout: each prompt's generated ids (end-of-text not included) and
the ms from the start of the call to its completion, the wall time, and the process's peak resident memory.
"""
import json
import resource
import sys
import time

import ctranslate2


def main():
    request = json.load(sys.stdin)
    with open(f"{request['model']}/vocabulary.json") as f:
        vocabulary = json.load(f)
    index = {token: i for i, token in enumerate(vocabulary)}
    loaded = time.perf_counter()
    generator = ctranslate2.Generator(request["model"], device="cpu", compute_type=request["computeType"], intra_threads=request["threads"], inter_threads=1)
    load_ms = (time.perf_counter() - loaded) * 1000
    prompts = [[vocabulary[i] for i in p] for p in request["prompts"]]
    warm = generator.generate_batch(prompts[:1], max_length=2, sampling_topk=1, include_prompt_in_result=False)
    assert warm[0].sequences_ids is not None
    start = time.perf_counter()
    pending = generator.generate_batch(
        prompts,
        max_length=request["maxNewTokens"],
        sampling_topk=1,
        include_prompt_in_result=False,
        max_batch_size=request["maxBatchSize"],
        asynchronous=True,
    )
    done_ms = [None] * len(pending)
    while any(d is None for d in done_ms):
        now = (time.perf_counter() - start) * 1000
        for k, result in enumerate(pending):
            if done_ms[k] is None and result.done():
                done_ms[k] = now
        time.sleep(0.001)
    wall_ms = (time.perf_counter() - start) * 1000
    eos = index["<|endoftext|>"]
    results = []
    for k, result in enumerate(pending):
        ids = result.result().sequences_ids[0]
        results.append({"ids": [i for i in ids if i != eos], "ms": done_ms[k]})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump({"results": results, "wallMs": wall_ms, "loadMs": load_ms, "peakRssMiB": peak, "version": ctranslate2.__version__}, sys.stdout)


if __name__ == "__main__":
    main()
