//! Small inline SVG charts for the HTML report: vertical bars (optionally on a log scale),
//! horizontal bars and a line. Plain SVG 1.1 with `<title>` tooltips; every text is escaped.

use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 56.0;

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML and SVG text and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One bar or point: its label on the axis and its tooltip.
pub struct Datum {
    /// Axis label (may be empty to skip it).
    pub label: String,
    /// The value drawn.
    pub value: f64,
    /// Hover text.
    pub tooltip: String,
}

/// Round tick values covering `0..=max`: steps of 1, 2 or 5 times a power of ten.
fn ticks(max: f64) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0];
    }
    let rough = max / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    let mut ticks = Vec::new();
    let mut t = 0.0;
    while t <= max * 1.0001 + step {
        ticks.push(t);
        if t >= max {
            break;
        }
        t += step;
    }
    ticks
}

/// `1.2M`, `35k`, `120`, `0.5`.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn open(out: &mut String, title: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
}

/// Vertical bars; `log` draws the values on a log₁₀(1 + v) scale (for long tails).
pub fn bars(title: &str, data: &[Datum], log: bool) -> String {
    let mut out = String::new();
    open(&mut out, title);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let scale = |v: f64| if log { (1.0 + v.max(0.0)).log10() } else { v };
    let max = data.iter().map(|d| scale(d.value)).fold(0.0, f64::max);
    let tick_values: Vec<(f64, String)> = if log {
        let top = max.ceil().max(1.0) as i32;
        (0..=top)
            .map(|p| {
                let v = 10f64.powi(p);
                (scale(v), short_number(v))
            })
            .collect()
    } else {
        ticks(max)
            .into_iter()
            .map(|t| (t, short_number(t)))
            .collect()
    };
    let top = tick_values.last().map_or(1.0, |t| t.0).max(max).max(1e-12);
    let y = |v: f64| TOP + plot_h * (1.0 - v / top);
    axes(&mut out, &tick_values, y);
    let n = data.len().max(1) as f64;
    let slot = plot_w / n;
    let every = label_every(data.len(), slot);
    for (i, d) in data.iter().enumerate() {
        let x = LEFT + slot * i as f64;
        let top_y = y(scale(d.value));
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
            x + slot * 0.1,
            top_y,
            (slot * 0.8).max(0.5),
            (TOP + plot_h - top_y).max(0.0),
            escape(&d.tooltip)
        );
        if i % every == 0 && !d.label.is_empty() {
            x_label(&mut out, x + slot / 2.0, &d.label, data.len() > 12);
        }
    }
    out.push_str("</svg>");
    out
}

/// A line through the points, on a value axis from `low` to `high`.
pub fn line(title: &str, data: &[Datum], low: f64, high: f64) -> String {
    let mut out = String::new();
    open(&mut out, title);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let span = (high - low).max(1e-9);
    let y = |v: f64| TOP + plot_h * (1.0 - (v - low) / span);
    let step = if span > 2.0 { 1.0 } else { 0.25 };
    let mut ticks = Vec::new();
    let mut t = low;
    while t <= high + 1e-9 {
        ticks.push((t, format!("{t:.2}")));
        t += step;
    }
    axes(&mut out, &ticks, y);
    let n = data.len().max(1) as f64;
    let slot = plot_w / n;
    let every = label_every(data.len(), slot);
    let points: Vec<String> = data
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{:.1},{:.1}", LEFT + slot * (i as f64 + 0.5), y(d.value)))
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="line" points="{}"/>"#,
        points.join(" ")
    );
    for (i, d) in data.iter().enumerate() {
        let cx = LEFT + slot * (i as f64 + 0.5);
        let _ = write!(
            out,
            r#"<circle cx="{cx:.1}" cy="{:.1}" r="3"><title>{}</title></circle>"#,
            y(d.value),
            escape(&d.tooltip)
        );
        if i % every == 0 && !d.label.is_empty() {
            x_label(&mut out, cx, &d.label, data.len() > 12);
        }
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars, one row per datum, labels on the left.
pub fn hbars(title: &str, data: &[Datum]) -> String {
    let row = 20.0;
    let label_w = 190.0;
    let height = TOP + row * data.len() as f64 + 8.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
    let max = data.iter().map(|d| d.value).fold(0.0, f64::max).max(1e-12);
    let plot_w = WIDTH - label_w - RIGHT - 70.0;
    for (i, d) in data.iter().enumerate() {
        let y = TOP + row * i as f64;
        let w = (plot_w * d.value / max).max(if d.value > 0.0 { 1.0 } else { 0.0 });
        let label: String = if d.label.chars().count() > 28 {
            d.label.chars().take(27).chain(['…']).collect()
        } else {
            d.label.clone()
        };
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{label_w:.1}" y="{:.1}" width="{w:.1}" height="{:.1}"><title>{}</title></rect><text class="value" x="{:.1}" y="{:.1}">{}</text>"#,
            label_w - 6.0,
            y + row * 0.7,
            escape(&label),
            y + 3.0,
            row - 6.0,
            escape(&d.tooltip),
            label_w + w + 4.0,
            y + row * 0.7,
            escape(&short_number(d.value))
        );
    }
    out.push_str("</svg>");
    out
}

/// How often to label the x axis so labels do not overlap.
fn label_every(n: usize, slot: f64) -> usize {
    let needed = if n > 12 { 16.0 } else { 40.0 };
    ((needed / slot).ceil() as usize).max(1)
}

fn x_label(out: &mut String, x: f64, label: &str, rotate: bool) {
    let y = HEIGHT - BOTTOM + 14.0;
    if rotate {
        let _ = write!(
            out,
            r#"<text class="label" x="{x:.1}" y="{y:.1}" text-anchor="end" transform="rotate(-45 {x:.1} {y:.1})">{}</text>"#,
            escape(label)
        );
    } else {
        let _ = write!(
            out,
            r#"<text class="label" x="{x:.1}" y="{y:.1}" text-anchor="middle">{}</text>"#,
            escape(label)
        );
    }
}

/// The y axis with grid lines at `ticks` (value, label) and the x axis line.
fn axes(out: &mut String, ticks: &[(f64, String)], y: impl Fn(f64) -> f64) {
    for (value, label) in ticks {
        let ty = y(*value);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{ty:.1}" y2="{ty:.1}"/><text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            ty + 4.0,
            escape(label)
        );
    }
    let base = HEIGHT - BOTTOM;
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" x2="{:.1}" y1="{base:.1}" y2="{base:.1}"/>"#,
        WIDTH - RIGHT
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datum(label: &str, value: f64) -> Datum {
        Datum {
            label: label.into(),
            value,
            tooltip: format!("{label}: {value}"),
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<b>"Tom & Jerry's"</b>"#),
            "&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot;&lt;/b&gt;"
        );
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(10.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0), [0.0]);
        let t = ticks(33_862_037.0);
        assert!(t.last().copied().unwrap() >= 33_862_037.0);
        assert!(t.len() <= 8, "{t:?}");
    }

    #[test]
    fn charts_are_svg_with_a_shape_per_datum() {
        let data: Vec<Datum> = (0..30)
            .map(|i| datum(&format!("<{i}>"), i as f64))
            .collect();
        for svg in [
            bars("t & t", &data, false),
            bars("t", &data, true),
            line("t", &data, 0.0, 30.0),
            hbars("t", &data),
        ] {
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
            assert_eq!(svg.matches("<title>").count(), 31, "{svg}");
            assert!(!svg.contains("<0>") && svg.contains("&lt;0&gt;"));
        }
        assert!(bars("empty", &[], false).ends_with("</svg>"));
        assert_eq!(short_number(33_862_037.0), "33.9M");
        assert_eq!(short_number(1_500.0), "1.5k");
        assert_eq!(short_number(12.0), "12");
    }
}
