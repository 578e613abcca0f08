//! Grouped bar charts as plain SVG: one group per engine, one bar per series.
//! Small enough to read in a diff and to view on GitHub without a plot library.

use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 80.0;
const COLOURS: [&str; 6] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1",
];

pub struct Chart<'a> {
    pub title: String,
    pub unit: &'a str,
    /// Log scale (for latencies spanning decades).
    pub log: bool,
    pub groups: Vec<String>,
    /// (series name, one value per group; `None` draws no bar).
    pub series: Vec<(String, Vec<Option<f64>>)>,
    /// A value to mark across the plot (1 on a chart of ratios).
    pub reference: Option<f64>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A linear axis: a round step (1, 2, 2.5 or 5 × 10ⁿ) that cuts it into at
/// most six intervals, and the first multiple of that step at or above
/// `max`, so every tick reads as a round number.
pub fn round_axis(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let magnitude = 10f64.powf((max / 5.0).log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|multiple| multiple * magnitude)
        .find(|step| max / step <= 6.0)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil().max(1.0) * step, step)
}

/// A tick's label: the round number, with no trailing zeros.
fn tick_label(value: f64) -> String {
    let rounded = (value * 1e6).round() / 1e6;
    format!("{rounded}")
}

fn label(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

impl Chart<'_> {
    pub fn render(&self) -> String {
        let values = self
            .series
            .iter()
            .flat_map(|(_, values)| values.iter().flatten());
        let positive: Vec<f64> = values.copied().filter(|value| *value > 0.0).collect();
        let max = positive.iter().copied().fold(0.0, f64::max).max(1e-9);
        let min = positive.iter().copied().fold(max, f64::min);
        let (floor, ceiling) = if self.log {
            (
                10f64.powf(min.log10().floor()),
                10f64.powf(max.log10().ceil()),
            )
        } else {
            (0.0, round_axis(max * 1.05).0)
        };
        let plot_height = HEIGHT - TOP - BOTTOM;
        let y_of = |value: f64| {
            let share = if self.log {
                (value.max(floor).log10() - floor.log10()) / (ceiling.log10() - floor.log10())
            } else {
                value / ceiling
            };
            TOP + plot_height * (1.0 - share.clamp(0.0, 1.0))
        };
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
            WIDTH / 2.0,
            escape(&self.title)
        );
        // Axis ticks: decades on a log scale, round steps otherwise.
        let ticks: Vec<f64> = if self.log {
            let mut ticks = Vec::new();
            let mut tick = floor;
            while tick <= ceiling * 1.0001 {
                ticks.push(tick);
                tick *= 10.0;
            }
            ticks
        } else {
            let step = round_axis(max * 1.05).1;
            let intervals = (ceiling / step).round() as u32;
            (0..=intervals).map(|n| step * f64::from(n)).collect()
        };
        for tick in ticks {
            let y = y_of(tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                tick_label(tick)
            );
        }
        if let Some(reference) = self.reference {
            let y = y_of(reference);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#333" stroke-dasharray="4 3"/>"##,
                WIDTH - RIGHT
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>"#,
            TOP + plot_height / 2.0,
            TOP + plot_height / 2.0,
            escape(self.unit)
        );
        let group_width = (WIDTH - LEFT - RIGHT) / self.groups.len().max(1) as f64;
        let bar_width = group_width * 0.8 / self.series.len().max(1) as f64;
        for (group_index, group) in self.groups.iter().enumerate() {
            let group_x = LEFT + group_width * group_index as f64;
            for (series_index, (_, values)) in self.series.iter().enumerate() {
                let Some(value) = values.get(group_index).copied().flatten() else {
                    continue;
                };
                let x = group_x + group_width * 0.1 + bar_width * series_index as f64;
                let y = y_of(value);
                let _ = writeln!(
                    svg,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                    bar_width * 0.95,
                    (TOP + plot_height - y).max(0.0),
                    COLOURS[series_index % COLOURS.len()],
                    escape(group),
                    label(value)
                );
                if self.series.len() <= 3 {
                    let _ = writeln!(
                        svg,
                        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"#,
                        x + bar_width * 0.475,
                        y - 3.0,
                        label(value)
                    );
                }
            }
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                group_x + group_width / 2.0,
                TOP + plot_height + 16.0,
                escape(group)
            );
        }
        for (series_index, (name, _)) in self.series.iter().enumerate() {
            let x = LEFT + 140.0 * series_index as f64;
            let y = HEIGHT - 24.0;
            let _ = writeln!(
                svg,
                r#"<rect x="{x}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{y}">{}</text>"#,
                y - 9.0,
                COLOURS[series_index % COLOURS.len()],
                x + 14.0,
                escape(name)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_drawn_for_values_and_skipped_for_gaps() {
        let chart = Chart {
            title: "t <&>".to_owned(),
            unit: "ops/s",
            log: true,
            groups: vec!["a".to_owned(), "b".to_owned()],
            series: vec![("s".to_owned(), vec![Some(10.0), None])],
            reference: None,
        };
        let svg = chart.render();
        assert_eq!(
            svg.matches("<rect x=").count(),
            2,
            "one bar, one legend swatch"
        );
        assert!(svg.contains("t &lt;&amp;&gt;"));
    }

    #[test]
    fn linear_axes_have_round_ticks() {
        assert_eq!(round_axis(47_312.0), (50_000.0, 10_000.0));
        assert_eq!(round_axis(1.83), (2.0, 0.5));
        assert_eq!(round_axis(0.7), (0.8, 0.2));
        assert_eq!(round_axis(12.0), (12.0, 2.0));
        let chart = Chart {
            title: "t".to_owned(),
            unit: "ops/s",
            log: false,
            groups: vec!["a".to_owned()],
            series: vec![("s".to_owned(), vec![Some(47_312.0)])],
            reference: Some(1.0),
        };
        let svg = chart.render();
        for tick in [">0<", ">10000<", ">50000<"] {
            assert!(svg.contains(tick), "{tick} missing");
        }
        assert!(!svg.contains(">52043<"), "a tick at 1.1 × the maximum");
        assert!(svg.contains("stroke-dasharray"), "the reference line");
    }
}
