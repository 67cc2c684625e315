"""The evaluation report: one self-contained HTML file (no external assets, opens offline).

Sections: the blessing decision with its reasons; PSNR/SSIM per benchmark, degradation and
scale for candidate, baseline and bicubic; the time for the timing frames and parameters; a
PSNR-versus-time plot (inline SVG); side-by-side crops bicubic / model / ground truth of
the region where the model gains most over bicubic (inline PNGs).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import Dict, List, Optional

import numpy as np
from PIL import Image

from imagesr.components.tfx.evaluator_config import describe_timing
from imagesr.core import evaluation, resize
from imagesr.core.degrade import CLEAN, Degradation

COLORS = {"candidate": "#d62728", "baseline": "#1f77b4", "bicubic": "#7f7f7f"}


def _png_data_uri(img: np.ndarray, zoom: int = 3) -> str:
    im = Image.fromarray(img)
    im = im.resize((im.width * zoom, im.height * zoom), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _psnr_table(rows: List[Dict]) -> str:
    keys = sorted({(r["benchmark"], r.get("degradation", "clean"), r["scale"]) for r in rows})
    roles = [m for m in ("candidate", "baseline", "bicubic") if any(r["model"] == m for r in rows)]
    cell = {(r["benchmark"], r.get("degradation", "clean"), r["scale"], r["model"]): r for r in rows}
    out = ["<table><tr><th>benchmark</th><th>LR made by</th><th>scale</th>"] + \
        [f"<th>{m} PSNR-Y / SSIM</th>" for m in roles] + ["</tr>"]
    for b, d, s in keys:
        how = "MATLAB bicubic" if d == "clean" else d
        out.append(f"<tr><td>{html.escape(b)}</td><td>{html.escape(how)}</td><td>x{s:g}</td>")
        for m in roles:
            r = cell.get((b, d, s, m))
            out.append(f"<td>{r['psnr_y']:.2f} dB / {r['ssim_y']:.4f}</td>" if r else "<td>-</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _plot(metrics: Dict) -> str:
    """PSNR (first benchmark/scale the candidate has) against seconds for 30 frames."""
    rows = metrics["psnr"]
    cand = [r for r in rows if r["model"] == "candidate"]
    if not cand:
        return "<p>(no PSNR to plot)</p>"
    b, d, s = cand[0]["benchmark"], cand[0].get("degradation", "clean"), cand[0]["scale"]
    pts = []
    for r in rows:
        if (r["benchmark"], r.get("degradation", "clean"), r["scale"]) == (b, d, s) and r["model"] in metrics["timing"]:
            pts.append((r["model"], metrics["timing"][r["model"]]["seconds"], r["psnr_y"]))
    w, h, pad = 640, 320, 60
    ts = [max(p[1], 1e-4) for p in pts]
    lo_t, hi_t = math.log10(min(ts)) - 0.3, math.log10(max(ts)) + 0.3
    ps = [p[2] for p in pts]
    lo_p, hi_p = min(ps) - 0.5, max(ps) + 0.5

    def xy(t, p):
        x = pad + (math.log10(max(t, 1e-4)) - lo_t) / (hi_t - lo_t) * (w - 2 * pad)
        y = h - pad - (p - lo_p) / (hi_p - lo_p) * (h - 2 * pad)
        return x, y

    svg = [f'<svg width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" style="background:#fff;border:1px solid #ccc">',
           f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#000"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#000"/>',
           f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle" font-size="12">seconds for {html.escape(describe_timing(metrics["timing_setup"]))} (log scale; left is faster)</text>',
           f'<text x="15" y="{h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 15 {h / 2})">PSNR-Y {html.escape(b)} x{s:g} (dB)</text>']
    for k in range(int(math.floor(lo_t)), int(math.ceil(hi_t)) + 1):
        x, _ = xy(10.0**k, lo_p)
        if pad <= x <= w - pad:
            svg.append(f'<text x="{x}" y="{h - pad + 15}" text-anchor="middle" font-size="10">{10.0**k:g}</text>')
    for name, t, p in pts:
        x, y = xy(t, p)
        svg.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{COLORS.get(name, "#000")}"/>')
        anchor, dx = ("end", -9) if x > w / 2 else ("start", 9)  # keep labels inside the frame
        svg.append(f'<text x="{x + dx:.1f}" y="{y - 8:.1f}" font-size="12" text-anchor="{anchor}">{name}: {p:.2f} dB, {t:.3f} s</text>')
    svg.append("</svg>")
    return "".join(svg)


def _crops(models: Dict, folder: str, scale: Optional[float], count: int = 2, size: int = 64,
           degradation: Degradation = CLEAN) -> str:
    if scale is None:
        return ""
    files = evaluation.list_images(folder)[:count]
    out = []
    for path in files:
        hr = evaluation.load_hr(path)
        hr = np.repeat(hr[..., None], 3, axis=2) if hr.ndim == 2 else hr
        hr = resize.crop_to_multiple(hr, scale)
        lr = evaluation.degraded_lr(hr, scale, degradation)
        bic = models["bicubic"](lr, hr.shape[:2])
        sr = models["candidate"](lr, hr.shape[:2])
        # the window where the model removes the most error relative to bicubic (coarse grid)
        gain = np.abs(bic.astype(np.float32) - hr).mean(axis=2) - np.abs(sr.astype(np.float32) - hr).mean(axis=2)
        best, pos = -np.inf, (0, 0)
        step = max(8, size // 2)
        for y in range(0, max(1, hr.shape[0] - size), step):
            for x in range(0, max(1, hr.shape[1] - size), step):
                v = float(gain[y : y + size, x : x + size].sum())
                if v > best:
                    best, pos = v, (y, x)
        y, x = pos
        cells = [("bicubic", bic), ("candidate", sr), ("ground truth", hr)]
        imgs = "".join(
            f'<figure><img src="{_png_data_uri(np.ascontiguousarray(a[y:y + size, x:x + size]))}"/><figcaption>{n}</figcaption></figure>'
            for n, a in cells)
        how = f", LR by {html.escape(degradation.name)}" if degradation != CLEAN else ""
        out.append(f"<div class='crops'><h4>{html.escape(os.path.basename(path))} x{scale:g}{how}, region ({x}, {y})</h4>"
                   f"{imgs}</div>")
    return "".join(out)


def write_report(path: str, metrics: Dict, models: Dict, crop_folder: str, crop_scale: Optional[float],
                 real_video: Optional[Degradation] = None) -> str:
    verdict = "BLESSED" if metrics["blessed"] else "NOT BLESSED"
    color = "#2ca02c" if metrics["blessed"] else "#d62728"
    timing_rows = "".join(
        f"<tr><td>{role}</td><td>{m['kind']}</td><td>{m['parameters']:,}</td>"
        f"<td>{metrics['timing'][role]['seconds']:.3f} s</td><td>{metrics['timing'][role]['fps']:.1f}</td></tr>"
        for role, m in metrics["models"].items())
    setup = metrics["timing_setup"]
    doc = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>imagesr evaluation: {verdict}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #bbb; padding: 4px 10px; text-align: right; }}
th {{ background: #f0f0f0; }} .verdict {{ font-size: 1.6em; font-weight: bold; color: {color}; }}
figure {{ display: inline-block; margin: 4px; text-align: center; }} img {{ image-rendering: pixelated; border: 1px solid #999; }}
li {{ margin: 2px 0; }}
</style></head><body>
<h1>imagesr model evaluation</h1>
<p class="verdict">{verdict}</p>
<ul>{''.join(f'<li>{html.escape(r)}</li>' for r in metrics['reasons'])}</ul>
{''.join(f'<p><i>{html.escape(n)}</i></p>' for n in metrics.get('notes', []))}
<h2>Quality (Y-PSNR / SSIM, border = scale)</h2>
{_psnr_table(metrics['psnr'])}
<h2>Speed and size</h2>
<p>{html.escape(describe_timing(setup))}, batch {setup['batch']}, median of {setup['repeats']} after a warm-up,
on this machine.</p>
<table><tr><th>model</th><th>kind</th><th>parameters</th><th>time for the frames</th><th>fps</th></tr>{timing_rows}</table>
<h2>PSNR versus time</h2>
{_plot(metrics)}
<h2>Side by side (bicubic / model / ground truth, 3x zoom)</h2>
{_crops(models, crop_folder, crop_scale)}
{f"<h2>Side by side on real-video input ({html.escape(real_video.name)})</h2>" + _crops(models, crop_folder, crop_scale, degradation=real_video) if real_video else ""}
<h2>Models</h2>
<ul>{''.join(f"<li>{role}: {html.escape(str(m['path']))}</li>" for role, m in metrics['models'].items())}</ul>
</body></html>
"""
    tmp = path + ".partial"
    with open(tmp, "w") as f:
        f.write(doc)
    os.replace(tmp, path)
    return path
