# prepare: RAS+, brain crop, z-score; one rule for labelled datasets (T1w, mask, dseg), one for the others.


rule prepare:
    input:
        unpack(PLAN.prepare.input),
    output:
        t1w=path("hr", kind="T1w"),
        mask=path("hr", kind="mask"),
        dseg=path("hr", kind="dseg"),
    log:
        "results/logs/prepare/{dataset}/sub-{subject}.log",
    benchmark:
        "results/benchmarks/prepare/{dataset}/sub-{subject}.tsv"
    wildcard_constraints:
        dataset=PLAN.prepare.dataset_pattern(labelled=True),
    conda:
        ENV
    params:
        mask=PLAN.prepare.mask_option,
        dseg=PLAN.prepare.dseg_option,
        crop=config["prepare"]["crop"],
        margin=config["prepare"]["margin"],
        normalise=config["prepare"]["normalise"],
        multiple=PLAN.study.scale_text,
        resample=PLAN.prepare.resample(),
    shell:
        "mrisr prepare --t1w {input.T1w:q} {params.mask} {params.dseg} --subject {wildcards.subject:q}"
        ' --out-dir "$(dirname {output.t1w:q})" --margin {params.margin:q} --multiple {params.multiple:q}'
        " --normalise {params.normalise:q} --crop {params.crop:q} {params.resample} > {log:q} 2>&1"


use rule prepare as prepare_unlabelled with:
    output:
        t1w=path("hr", kind="T1w"),
        mask=path("hr", kind="mask"),
    wildcard_constraints:
        dataset=PLAN.prepare.dataset_pattern(labelled=False),
    params:
        mask=PLAN.prepare.mask_option,
        dseg="",
        crop=config["prepare"]["crop"],
        margin=config["prepare"]["margin"],
        normalise=config["prepare"]["normalise"],
        multiple=PLAN.study.scale_text,
        resample=PLAN.prepare.resample(),
