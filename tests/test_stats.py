import numpy as np
import pandas as pd
from scipy import stats as sps

from mrisr.stats import comparison_table, paired_tests, smallest_wilcoxon_p, summarise, to_markdown


def _frames(rng, n=8):
    subjects = [f"{i:02d}" for i in range(n)]
    base = rng.normal(30, 2, n)
    frames = {}
    for method, shift in {"ours": 0.0, "a": -0.8, "b": -0.1, "c": -1.5}.items():
        psnr = base + shift + rng.normal(0, 0.3, n)
        frames[method] = pd.DataFrame({"subject": subjects, "psnr": psnr, "ssim": psnr / 40})
    # another subject order must not change the pairing
    frames["a"] = frames["a"].iloc[::-1].reset_index(drop=True)
    return frames


def _holm(p):
    """Holm step-down by hand."""
    order = np.argsort(p)
    m, out, running = len(p), np.empty(len(p)), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def test_paired_tests_equal_scipy_and_holm_by_hand(rng):
    frames = _frames(rng)
    tests = paired_tests(frames, "ours").set_index(["metric", "method"])
    ref = frames["ours"].set_index("subject")
    for metric in ("psnr", "ssim"):
        p_t, p_w = [], []
        for method in ("a", "b", "c"):
            x = frames[method].set_index("subject").loc[ref.index, metric].to_numpy()
            y = ref[metric].to_numpy()
            row = tests.loc[(metric, method)]
            t = sps.ttest_rel(x, y)
            w = sps.wilcoxon(x, y)
            np.testing.assert_allclose([row.t, row.p_t, row.W, row.p_wilcoxon], [t.statistic, t.pvalue, w.statistic,
                                                                                 w.pvalue], rtol=1e-6)
            np.testing.assert_allclose(row.mean_diff, np.mean(x - y))
            assert row.n_pairs == 8
            p_t.append(t.pvalue)
            p_w.append(w.pvalue)
        got = tests.loc[metric].loc[["a", "b", "c"]]
        np.testing.assert_allclose(got.p_t_holm, _holm(np.array(p_t)), rtol=1e-9)
        np.testing.assert_allclose(got.p_wilcoxon_holm, _holm(np.array(p_w)), rtol=1e-9)


def test_one_subject_gives_no_test_but_no_crash():
    frames = {m: pd.DataFrame({"subject": ["01"], "psnr": [v]}) for m, v in {"ours": 30.0, "a": 29.0}.items()}
    table = comparison_table(frames, "ours")
    row = table.set_index("method").loc["a"]
    assert row.n == 1 and np.isnan(row.p_t) and np.isnan(row.p_wilcoxon_holm) and row.mean_diff == -1.0
    assert "| a | PSNR (dB) | 1 | -1.0000 | – |" in to_markdown(table)


def test_summary_and_markdown_state_n_and_the_test(rng):
    frames = _frames(rng, n=5)
    summary = summarise(frames).set_index(["method", "metric"])
    np.testing.assert_allclose(summary.loc[("b", "psnr"), "std"], np.std(frames["b"].psnr, ddof=1))
    text = to_markdown(comparison_table(frames, "ours"), notes=["LPIPS not computed: offline"])
    assert "| ours | 5 |" in text and "Paired tests against **ours**" in text and "Holm" in text
    assert text.rstrip().endswith("Note: LPIPS not computed: offline")


def test_tables_state_the_smallest_wilcoxon_p_their_n_allows(rng):
    for n in (2, 5, 6, 20):  # the bound is what scipy's exact test gives when every difference has one sign
        assert smallest_wilcoxon_p(n) == sps.wilcoxon(np.arange(1.0, n + 1), method="exact").pvalue
    five = to_markdown(comparison_table(_frames(rng, n=5), "ours"))
    assert "With 5 pairs, an exact two-sided Wilcoxon p cannot fall below 0.0625" in five
    assert "this n cannot reach p < 0.05" in five
    eight = to_markdown(comparison_table(_frames(rng, n=8), "ours"))
    assert "cannot fall below 0.0078" in eight and "cannot reach" not in eight
