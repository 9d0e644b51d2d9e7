//! Plots of a study with plotters: accuracy against the number of labels (log x, error bars
//! of one standard deviation over the seeds) as PNG and SVG, and the pretraining health
//! curves as SVG for the HTML report. Text is drawn with DejaVu Sans, embedded in the binary,
//! so no system fonts are needed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::summary::StudyResults;

const FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");

/// Colours of the models (Tableau 10, then four darker ones): one per method or baseline.
const COLORS: [RGBColor; 14] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
    RGBColor(90, 60, 0),
    RGBColor(0, 80, 90),
    RGBColor(120, 0, 60),
];

/// How a series is drawn: its model's colour; dashed for k-NN and self-training; thick for
/// pretrained encoders (thickest fine-tuned); triangles for k-NN, circles otherwise.
struct Look {
    color: RGBColor,
    width: u32,
    dashed: bool,
    triangle: bool,
}

fn looks(results: &StudyResults) -> Vec<Look> {
    let mut models: Vec<&str> = Vec::new();
    for row in &results.series {
        if !models.contains(&row.model.as_str()) {
            models.push(&row.model);
        }
    }
    results
        .series
        .iter()
        .map(|row| {
            let model = models.iter().position(|m| *m == row.model).expect("listed");
            let knn = row.evaluation.starts_with("k-NN");
            Look {
                color: COLORS[model % COLORS.len()],
                width: match (row.pretrained, row.evaluation.as_str()) {
                    (true, "fine-tuned") => 3,
                    (true, _) | (false, "supervised" | "self-training") => 2,
                    _ => 1,
                },
                dashed: knn || row.evaluation == "self-training",
                triangle: knn,
            }
        })
        .collect()
}

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans is a valid font"));
    });
}

/// Size of the accuracy plot in pixels.
const ACCURACY_SIZE: (u32, u32) = (1100, 600);

/// Draws the accuracy plot into `png` and `svg`; returns the SVG text.
pub fn accuracy_plot(results: &StudyResults, png: &Path, svg: &Path) -> Result<String, String> {
    register_font();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, ACCURACY_SIZE).into_drawing_area();
        draw_accuracy(&root, results).map_err(|error| format!("{}: {error}", svg.display()))?;
    }
    pretext_train::write_atomic(svg, &text).map_err(|error| error.to_string())?;
    let root = BitMapBackend::new(png, ACCURACY_SIZE).into_drawing_area();
    draw_accuracy(&root, results).map_err(|error| format!("{}: {error}", png.display()))?;
    Ok(text)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw_accuracy<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    results: &StudyResults,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    // The title spans the whole picture (legend included), its size shrunk until it fits
    // (DejaVu Sans averages about 0.55 em per character).
    let fitting =
        (ACCURACY_SIZE.0 as f64 - 20.0) / (0.55 * results.title.chars().count().max(1) as f64);
    let body = root.titled(&results.title, ("sans-serif", fitting.clamp(10.0, 22.0)))?;
    let (plot_area, legend_area) = body.split_horizontally(ACCURACY_SIZE.0 - 300);
    // (labels, mean %, std %) of each series.
    let lines: Vec<Vec<(f64, f64, f64)>> = results
        .series
        .iter()
        .map(|row| {
            results
                .budgets
                .iter()
                .filter_map(|budget| results.stat(&row.name, &budget.budget))
                .map(|stat| (stat.labels as f64, 100.0 * stat.mean, 100.0 * stat.std))
                .collect()
        })
        .collect();
    let points = lines.iter().flatten();
    let x_min = points.clone().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_max = points.clone().map(|p| p.0).fold(0.0, f64::max);
    let y_min = points.clone().map(|p| p.1 - p.2).fold(100.0, f64::min);
    let y_max = points.map(|p| p.1 + p.2).fold(0.0, f64::max);
    let (x_min, x_max) = if x_min.is_finite() {
        (x_min / 1.4, x_max * 1.4)
    } else {
        (1.0, 10.0)
    };
    let (y_min, y_max) = ((y_min - 3.0).max(0.0), (y_max + 3.0).min(100.0));
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (x_min..x_max)
                .log_scale()
                .with_key_points(budget_ticks(results)),
            y_min.min(y_max - 1.0)..y_max,
        )?;
    chart
        .configure_mesh()
        .x_desc("labeled training examples (log scale)")
        .y_desc("held-out accuracy (%)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    let looks = looks(results);
    for (look, line) in looks.iter().zip(&lines) {
        let style = look.color.stroke_width(look.width);
        let points = line.iter().map(|&(x, mean, _)| (x, mean));
        if look.dashed {
            chart.draw_series(DashedLineSeries::new(points, 10, 6, style))?;
        } else {
            chart.draw_series(LineSeries::new(points, style))?;
        }
        chart.draw_series(line.iter().map(|&(x, mean, std)| {
            ErrorBar::new_vertical(
                x,
                mean - std,
                mean,
                mean + std,
                look.color.stroke_width(1),
                8,
            )
        }))?;
        for &(x, mean, _) in line {
            draw_marker(chart.plotting_area(), (x, mean), look)?;
        }
    }
    // The legend beside the plot, one entry per series.
    legend_area.draw(&Text::new(
        "colour: model; thick: pretrained;",
        (10, 18),
        ("sans-serif", 14),
    ))?;
    legend_area.draw(&Text::new(
        "dashed: k-NN, self-training",
        (10, 36),
        ("sans-serif", 14),
    ))?;
    for (index, (row, look)) in results.series.iter().zip(&looks).enumerate() {
        let y = 62 + (536 / results.series.len().max(22) as i32) * index as i32;
        let style = look.color.stroke_width(look.width);
        if look.dashed {
            legend_area.draw(&plotters::element::DashedPathElement::new(
                vec![(10, y), (40, y)],
                6,
                4,
                style,
            ))?;
        } else {
            legend_area.draw(&PathElement::new(vec![(10, y), (40, y)], style))?;
        }
        draw_marker(&legend_area, (25, y), look)?;
        legend_area.draw(&Text::new(
            row.name.clone(),
            (50, y - 8),
            ("sans-serif", 15),
        ))?;
    }
    root.present()
}

/// A series' marker at `at`: a triangle for k-NN, a circle otherwise.
fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: CT::From,
    look: &Look,
) -> DrawResult<DB> {
    let size = 2 + look.width as i32;
    if look.triangle {
        area.draw(&TriangleMarker::new(at, size + 2, look.color.filled()))
    } else {
        area.draw(&Circle::new(at, size, look.color.filled()))
    }
}

/// A small line chart (one curve, steps on x) as SVG text, for the report's health curves.
pub fn curve_svg(title: &str, points: &[(f64, f64)]) -> Result<String, String> {
    register_font();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (430, 250)).into_drawing_area();
        draw_curve(&root, title, points).map_err(|error| format!("{title}: {error}"))?;
    }
    Ok(text)
}

fn draw_curve<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    points: &[(f64, f64)],
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let x_max = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let y_min = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (y_min, y_max) = if y_min.is_finite() {
        let pad = ((y_max - y_min) * 0.05).max(1e-6);
        (y_min - pad, y_max + pad)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..x_max, y_min..y_max)?;
    chart
        .configure_mesh()
        .x_labels(5)
        .y_labels(5)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format_tick(*y))
        .label_style(("sans-serif", 11))
        .draw()?;
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        COLORS[0].stroke_width(2),
    ))?;
    root.present()
}

/// The x-axis ticks of the accuracy plot: every budget's label count, so a study of two
/// budgets shows both (a log axis's own ticks showed a single "100").
fn budget_ticks(results: &StudyResults) -> Vec<f64> {
    let mut ticks: Vec<f64> = results
        .budgets
        .iter()
        .map(|budget| budget.labels as f64)
        .collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    ticks
}

/// A tick label with about three significant digits.
fn format_tick(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-3..1e5).contains(&magnitude) {
        format!("{value:.1e}")
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::summary::{Budget, Cell, Series};

    /// Two series (a pretrained probe, scratch) at 1% and 100%, 3 seeds, titled `title`.
    fn two_series(title: &str) -> StudyResults {
        let series = |name: &str, pretrained| Series {
            name: name.into(),
            model: name.into(),
            evaluation: "e".into(),
            pretrained,
        };
        let budgets: Vec<Budget> = [("1%", 80), ("100%", 8000)]
            .map(|(budget, labels)| Budget {
                budget: budget.into(),
                labels,
            })
            .to_vec();
        let mut cells = Vec::new();
        for seed in 0..3 {
            for (name, budget, labels, accuracy) in [
                ("simclr · linear", "1%", 80, 0.6),
                ("simclr · linear", "100%", 8000, 0.8),
                ("scratch", "1%", 80, 0.5),
            ] {
                cells.push(Cell {
                    series: name.into(),
                    budget: budget.into(),
                    labels,
                    seed,
                    accuracy: accuracy + 0.01 * seed as f64,
                    seconds: 0.0,
                    fingerprint: String::new(),
                    note: String::new(),
                    unmeasured: None,
                });
            }
        }
        StudyResults::new(
            title.into(),
            "data".into(),
            (8000, 2000),
            vec![series("simclr · linear", true), series("scratch", false)],
            budgets,
            vec![0, 1, 2],
            cells,
        )
    }

    #[test]
    fn accuracy_plot_writes_png_and_svg_with_every_series() {
        let results = two_series("plot test");
        let dir = tempfile::tempdir().unwrap();
        let (png, svg) = (dir.path().join("a.png"), dir.path().join("a.svg"));
        let text = accuracy_plot(&results, &png, &svg).unwrap();
        assert_eq!(std::fs::read_to_string(&svg).unwrap(), text);
        for needle in ["simclr · linear", "scratch", "log scale", "plot test"] {
            assert!(text.contains(needle), "{needle} missing from the SVG");
        }
        // Regression: a two-budget study's log axis showed the single tick "100"; every
        // budget is a tick now.
        for tick in ["\n80\n</text>", "\n8000\n</text>"] {
            assert!(text.contains(tick), "tick {tick:?} missing from the SVG");
        }
        let image = image::open(&png).unwrap();
        assert_eq!((image.width(), image.height()), ACCURACY_SIZE);
        // Not a blank canvas: the lines and the text put non-white pixels in.
        let rgb = image.to_rgb8();
        let inked = rgb.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(inked > 5000, "only {inked} drawn pixels");
    }

    /// Regression: a title wider than the plot area was centred on it and cut off on the
    /// left; now it spans the picture, shrunk to fit, with a margin on both sides.
    #[test]
    fn a_long_title_fits_inside_the_picture() {
        let title = "Keyword spotting: wav2vec 2.0 pretraining vs log-mel features vs training from scratch, 3 seeds";
        let dir = tempfile::tempdir().unwrap();
        let (png, svg) = (dir.path().join("a.png"), dir.path().join("a.svg"));
        accuracy_plot(&two_series(title), &png, &svg).unwrap();
        let rgb = image::open(&png).unwrap().to_rgb8();
        let dark_columns: Vec<u32> = (0..rgb.width())
            .filter(|&x| (0..30).any(|y| rgb.get_pixel(x, y).0.iter().all(|&c| c < 128)))
            .collect();
        let (first, last) = (dark_columns[0], *dark_columns.last().unwrap());
        assert!(
            first >= 3,
            "the title starts at column {first}: cut off on the left"
        );
        assert!(
            last + 3 < rgb.width(),
            "the title ends at column {last}: cut off on the right"
        );
        assert!(
            last - first > rgb.width() / 2,
            "the title is drawn ({first}..{last})"
        );
    }

    #[test]
    fn curve_svg_draws_a_path() {
        let points: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, (i as f64).sqrt())).collect();
        let svg = curve_svg("loss", &points).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("<polyline"),
            "{svg}"
        );
        assert_eq!(format_tick(0.000012), "1.2e-5");
        assert_eq!(format_tick(123.4), "123");
        assert_eq!(format_tick(0.5), "0.500");
    }
}
