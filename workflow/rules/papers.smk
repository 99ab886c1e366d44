# papers: every table and figure of the three papers (and the field's settings table, the README's figure), each a
# target by path under results/papers/<dataset>/<paper>/ and a report item with a caption (category = paper).
# One rule per item of PLAN.papers.items(), named papers_<item>: its inputs, files, caption (report/<item>.rst) and
# `mrisr papers` command line are planned in mrisr.plan.papers.


wildcard_constraints:
    paper=r"threeplayer|disgan",
    table=r"method_comparison|method_comparison_out_of_sample|ablation",


for _item in PLAN.papers.items():

    rule:
        name:
            f"papers_{_item.rule}"
        input:
            unpack(_item.input),
        output:
            **PLAN.papers.outputs(_item, report),
        log:
            PLAN.papers.log(_item),
        benchmark:
            PLAN.papers.benchmark(_item)
        conda:
            ENV
        params:
            **_item.facts,
            command=_item.command,
            options=_item.options,
        shell:
            "mrisr papers {params.command} {params.options} > {log:q} 2>&1"
