"""Greedy generation with CTranslate2 for `npm run bench:peers`, one peer run as bench/lib/peer-run.ts defines it.

Reads a JSON request on stdin ({"model", "computeType", "maxBatchSize", "threads", "maxNewTokens", "prompts":
[[token ids]], "single": [token ids] or absent}) and writes JSON on stdout: each prompt's generated ids and the ms from
the start of the call to its completion, the wall time; the single request alone (time to its first token and its
decode rate over maxNewTokens, medians of 3), as bench/lib/peer-run.ts `timeAlone` times it; and the process's peak
resident memory. End-of-text is suppressed until maxNewTokens
(`min_length`), so every engine generates the same number of tokens.
"""
import json
import resource
import statistics
import sys
import time

import ctranslate2


def main():
    request = json.load(sys.stdin)
    with open(f"{request['model']}/vocabulary.json") as f:
        vocabulary = json.load(f)
    started = time.perf_counter()
    generator = ctranslate2.Generator(
        request["model"],
        device="cpu",
        compute_type=request["computeType"],
        intra_threads=request["threads"],
        inter_threads=1,
    )
    load_ms = (time.perf_counter() - started) * 1000
    new = request["maxNewTokens"]
    options = dict(sampling_topk=1, include_prompt_in_result=False)

    def tokens(ids):
        return [vocabulary[i] for i in ids]

    def alone(max_length):
        t0 = time.perf_counter()
        out = generator.generate_batch([tokens(request["single"])], max_length=max_length, min_length=max_length, **options)
        return (time.perf_counter() - t0) * 1000, len(out[0].sequences_ids[0])

    single = None
    if request.get("single"):
        alone(2)
        ttft_ms = statistics.median(alone(1)[0] for _ in range(3))
        rates = []
        for _ in range(3):
            full_ms, generated = alone(new)
            rates.append((generated - 1) / ((full_ms - ttft_ms) / 1000))
        single = {"ttftMs": ttft_ms, "decodeTokS": statistics.median(rates)}
    prompts = [tokens(p) for p in request["prompts"]]
    start = time.perf_counter()
    pending = generator.generate_batch(
        prompts,
        max_length=new,
        min_length=new,
        max_batch_size=request["maxBatchSize"],
        asynchronous=True,
        **options,
    )
    done_ms = [None] * len(pending)
    while any(d is None for d in done_ms):
        now = (time.perf_counter() - start) * 1000
        for k, result in enumerate(pending):
            if done_ms[k] is None and result.done():
                done_ms[k] = now
        time.sleep(0.001)
    wall_ms = (time.perf_counter() - start) * 1000
    results = [{"ids": r.result().sequences_ids[0], "ms": done_ms[k]} for k, r in enumerate(pending)]
    json.dump(
        {
            "results": results,
            "wallMs": wall_ms,
            "loadMs": load_ms,
            "single": single,
            "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "version": ctranslate2.__version__,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
