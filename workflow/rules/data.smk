# fetch (the embedded demo) and prepare: RAS+, brain crop, z-score, splits.


rule demo_subject:
    output:
        t1w="results/raw/{dataset}/sub-{subject}/sub-{subject}_T1w.nii.gz",
        mask="results/raw/{dataset}/sub-{subject}/sub-{subject}_mask.nii.gz",
        dseg="results/raw/{dataset}/sub-{subject}/sub-{subject}_dseg.nii.gz",
    params:
        spacing=lambda wc: config["datasets"][wc.dataset]["spacing"],
        transforms=lambda wc: as_json(config["datasets"][wc.dataset]["transforms"]),
        seed=lambda wc: config["datasets"][wc.dataset]["seed"] if config["datasets"][wc.dataset]["seed"] is not None else config["seed"],
    benchmark:
        "results/benchmarks/demo_subject/{dataset}/sub-{subject}.tsv",
    log:
        "results/logs/demo_subject/{dataset}/sub-{subject}.log",
    conda:
        ENV
    shell:
        "mrisr demo --out-dir $(dirname {output.t1w}) --subject {wildcards.subject} --seed {params.seed}"
        " --spacing {params.spacing} --transforms {params.transforms:q} > {log} 2>&1"


rule splits:
    output:
        "results/data/{dataset}/splits.tsv",
    params:
        subjects=lambda wc: subjects(wc.dataset),
        val=config["prepare"]["val"],
        test=config["prepare"]["test"],
        seed=config["seed"],
    benchmark:
        "results/benchmarks/splits/{dataset}.tsv",
    log:
        "results/logs/splits/{dataset}.log",
    conda:
        ENV
    shell:
        "mrisr splits --subjects {params.subjects} --val {params.val} --test {params.test}"
        " --seed {params.seed} --out {output} > {log} 2>&1"


rule prepare:
    input:
        unpack(raw_inputs),
    output:
        t1w="results/data/{dataset}/sub-{subject}/sub-{subject}_T1w.nii.gz",
        mask="results/data/{dataset}/sub-{subject}/sub-{subject}_mask.nii.gz",
        **(
            {"dseg": "results/data/{dataset}/sub-{subject}/sub-{subject}_dseg.nii.gz"}
            if LABELLED
            else {}
        ),
    params:
        dseg=lambda wc, input: f"--dseg {input.dseg}" if LABELLED else "",
        crop=config["prepare"]["crop"],
        margin=config["prepare"]["margin"],
        normalise=config["prepare"]["normalise"],
        multiple=config["scale"],
        resample=(
            f"--resample {config['prepare']['resample']}"
            if config["prepare"]["resample"]
            else ""
        ),
    benchmark:
        "results/benchmarks/prepare/{dataset}/sub-{subject}.tsv",
    log:
        "results/logs/prepare/{dataset}/sub-{subject}.log",
    conda:
        ENV
    shell:
        "mrisr prepare --t1w {input.T1w} --mask {input.mask} {params.dseg} --subject {wildcards.subject}"
        " --out-dir $(dirname {output.t1w}) --margin {params.margin} --multiple {params.multiple}"
        " --normalise {params.normalise} --crop {params.crop} {params.resample} > {log} 2>&1"
