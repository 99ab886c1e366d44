# prepare: RAS+, brain crop, z-score; one rule for labelled datasets (T1w, mask, dseg), one for the others.

USED_DATASETS = [DATASET] + [d for d in [config["papers"]["threeplayer"]["out_of_sample"]] if d and d != DATASET]
LABELLED_PATTERN = "|".join(d for d in USED_DATASETS if labelled(d)) or "(?!)"
UNLABELLED_PATTERN = "|".join(d for d in USED_DATASETS if not labelled(d)) or "(?!)"
RESAMPLE = f"--resample {config['prepare']['resample']}" if config["prepare"]["resample"] else ""
PREPARE_TARGETS = [
    path("hr", dataset=DATASET, subject=s, kind=k)
    for s in subjects()
    for k in (("T1w", "mask", "dseg") if labelled() else ("T1w", "mask"))
]
get_prepare_input = lambda wildcards: raw_files(wildcards.dataset)[wildcards.subject]


rule prepare:
    input:
        unpack(get_prepare_input),
    output:
        t1w=path("hr", kind="T1w"),
        mask=path("hr", kind="mask"),
        dseg=path("hr", kind="dseg"),
    log:
        "results/logs/prepare/{dataset}/sub-{subject}.log",
    benchmark:
        "results/benchmarks/prepare/{dataset}/sub-{subject}.tsv"
    wildcard_constraints:
        dataset=LABELLED_PATTERN,
    conda:
        ENV
    params:
        dseg=lambda wc, input: option("--dseg", input.dseg),
        crop=config["prepare"]["crop"],
        margin=config["prepare"]["margin"],
        normalise=config["prepare"]["normalise"],
        multiple=config["scale"],
        resample=RESAMPLE,
    shell:
        "mrisr prepare --t1w {input.T1w:q} --mask {input.mask:q} {params.dseg} --subject {wildcards.subject:q}"
        ' --out-dir "$(dirname {output.t1w:q})" --margin {params.margin:q} --multiple {params.multiple:q}'
        " --normalise {params.normalise:q} --crop {params.crop:q} {params.resample} > {log:q} 2>&1"


use rule prepare as prepare_unlabelled with:
    output:
        t1w=path("hr", kind="T1w"),
        mask=path("hr", kind="mask"),
    wildcard_constraints:
        dataset=UNLABELLED_PATTERN,
    params:
        dseg="",
        crop=config["prepare"]["crop"],
        margin=config["prepare"]["margin"],
        normalise=config["prepare"]["normalise"],
        multiple=config["scale"],
        resample=RESAMPLE,
