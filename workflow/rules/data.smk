# fetch (the embedded demo, IXI, HCP) and prepare: RAS+, brain crop, z-score, splits.


localrules:
    ixi_download,
    hcp_subject,


rule demo_subject:
    wildcard_constraints:
        dataset=datasets_of("demo"),
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


rule ixi_download:
    wildcard_constraints:
        dataset=datasets_of("ixi"),
    output:
        "results/downloads/{dataset}/IXI-T1.tar",
    params:
        url=lambda wc: config["datasets"][wc.dataset]["url"],
        checks=lambda wc: download_checks(config["datasets"][wc.dataset]),
    log:
        "results/logs/download/{dataset}.log",
    conda:
        ENV
    shell:
        "mrisr download --url {params.url:q} {params.checks} --out {output} > {log} 2>&1"


for _name in DATASETS_BY_SOURCE["ixi"]:

    rule:
        name:
            f"ixi_extract_{_name}"
        input:
            f"results/downloads/{_name}/IXI-T1.tar",
        output:
            [raw_path(_name, s, kind) for s in subjects(_name) for kind in ("T1w", "mask")],
        params:
            subjects=subjects(_name),
            out_dir=f"results/raw/{_name}",
        log:
            f"results/logs/ixi_extract/{_name}.log",
        conda:
            ENV
        shell:
            "mrisr ixi-extract --tar {input} --subjects {params.subjects} --out-dir {params.out_dir} > {log} 2>&1"


rule hcp_subject:
    wildcard_constraints:
        dataset=datasets_of("hcp"),
    output:
        t1w="results/raw/{dataset}/sub-{subject}/sub-{subject}_T1w.nii.gz",
        mask="results/raw/{dataset}/sub-{subject}/sub-{subject}_mask.nii.gz",
        dseg="results/raw/{dataset}/sub-{subject}/sub-{subject}_dseg.nii.gz",
    params:
        s3=lambda wc: hcp_options(config["datasets"][wc.dataset]),
    log:
        "results/logs/hcp_subject/{dataset}/sub-{subject}.log",
    conda:
        ENV
    shell:
        "mrisr hcp-fetch --subject {wildcards.subject} --out-dir $(dirname {output.t1w}) {params.s3} > {log} 2>&1"


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
    wildcard_constraints:
        dataset=LABELLED_PATTERN,
    input:
        unpack(raw_inputs),
    output:
        t1w="results/data/{dataset}/sub-{subject}/sub-{subject}_T1w.nii.gz",
        mask="results/data/{dataset}/sub-{subject}/sub-{subject}_mask.nii.gz",
        dseg="results/data/{dataset}/sub-{subject}/sub-{subject}_dseg.nii.gz",
    params:
        dseg=lambda wc, input: f"--dseg {input.dseg}",
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


use rule prepare as prepare_unlabelled with:
    wildcard_constraints:
        dataset=UNLABELLED_PATTERN,
    output:
        t1w="results/data/{dataset}/sub-{subject}/sub-{subject}_T1w.nii.gz",
        mask="results/data/{dataset}/sub-{subject}/sub-{subject}_mask.nii.gz",
    params:
        dseg="",
        crop=config["prepare"]["crop"],
        margin=config["prepare"]["margin"],
        normalise=config["prepare"]["normalise"],
        multiple=config["scale"],
        resample=(
            f"--resample {config['prepare']['resample']}"
            if config["prepare"]["resample"]
            else ""
        ),
