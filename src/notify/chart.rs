//! A small bar chart of the window's spend per bucket against the baseline band, drawn into
//! an RGBA buffer and encoded as PNG. No text is drawn: the figures are in the message.

use crate::alert::model::Chart;

pub const WIDTH: u32 = 480;
pub const HEIGHT: u32 = 160;
const MARGIN: u32 = 8;

pub const BACKGROUND: [u8; 4] = [255, 255, 255, 255];
/// The usual range: the band between the baseline's low and high edges.
pub const BAND: [u8; 4] = [208, 236, 208, 255];
pub const BAND_EDGE: [u8; 4] = [60, 140, 60, 255];
/// A bucket within or below the band.
pub const BAR: [u8; 4] = [96, 112, 140, 255];
/// A bucket above the band.
pub const BAR_HIGH: [u8; 4] = [214, 48, 40, 255];
const AXIS: [u8; 4] = [150, 150, 150, 255];

struct Canvas {
    pixels: Vec<u8>,
}

impl Canvas {
    fn new() -> Canvas {
        let mut pixels = Vec::with_capacity((WIDTH * HEIGHT * 4) as usize);
        for _ in 0..WIDTH * HEIGHT {
            pixels.extend_from_slice(&BACKGROUND);
        }
        Canvas { pixels }
    }

    /// Fills the rectangle from (x0, y0) up to but not including (x1, y1), clipped.
    fn fill(&mut self, x0: u32, y0: u32, x1: u32, y1: u32, colour: [u8; 4]) {
        for y in y0.min(HEIGHT)..y1.min(HEIGHT) {
            for x in x0.min(WIDTH)..x1.min(WIDTH) {
                let i = ((y * WIDTH + x) * 4) as usize;
                self.pixels[i..i + 4].copy_from_slice(&colour);
            }
        }
    }
}

/// The pixel row of a dollar amount, with `top` dollars at the top of the plot area.
fn row_of(usd: f64, top: f64) -> u32 {
    let plot = f64::from(HEIGHT - 2 * MARGIN);
    let frac = (usd / top).clamp(0.0, 1.0);
    MARGIN + (plot * (1.0 - frac)).round() as u32
}

/// The chart as PNG bytes.
pub fn png(chart: &Chart) -> Vec<u8> {
    let mut canvas = Canvas::new();
    let highest = chart
        .points_usd
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(chart.band_high_usd, f64::max);
    let top = if highest > 0.0 { highest * 1.1 } else { 1.0 };
    let bottom = HEIGHT - MARGIN;

    // The band first, so the bars stand in front of it.
    let (band_top, band_bottom) = (
        row_of(chart.band_high_usd, top),
        row_of(chart.band_low_usd, top),
    );
    canvas.fill(MARGIN, band_top, WIDTH - MARGIN, band_bottom + 1, BAND);

    let n = chart.points_usd.len().max(1) as u32;
    let slot = (WIDTH - 2 * MARGIN) / n;
    let gap = (slot / 5).max(1).min(slot.saturating_sub(1));
    for (i, &v) in chart.points_usd.iter().enumerate() {
        if !v.is_finite() || v <= 0.0 {
            continue;
        }
        let x0 = MARGIN + i as u32 * slot + gap / 2;
        let colour = if v > chart.band_high_usd {
            BAR_HIGH
        } else {
            BAR
        };
        canvas.fill(x0, row_of(v, top), x0 + slot - gap, bottom, colour);
    }

    // The band's edges over the bars, and the axis.
    canvas.fill(MARGIN, band_top, WIDTH - MARGIN, band_top + 1, BAND_EDGE);
    canvas.fill(
        MARGIN,
        band_bottom,
        WIDTH - MARGIN,
        band_bottom + 1,
        BAND_EDGE,
    );
    canvas.fill(MARGIN, bottom, WIDTH - MARGIN, bottom + 1, AXIS);

    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .expect("a PNG header writes to memory");
    writer
        .write_image_data(&canvas.pixels)
        .expect("the image fits its header");
    writer.finish().expect("the PNG finishes in memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        (info, buf)
    }

    fn pixel(buf: &[u8], x: u32, y: u32) -> [u8; 4] {
        let i = ((y * WIDTH + x) * 4) as usize;
        buf[i..i + 4].try_into().unwrap()
    }

    #[test]
    fn a_spike_bucket_is_red_and_towers_over_the_band() {
        // Four buckets: three usual, the last ten times higher.
        let chart = Chart {
            bucket_minutes: 15,
            points_usd: vec![1.0, 1.1, 0.9, 10.0],
            band_low_usd: 0.8,
            band_high_usd: 1.2,
        };
        let bytes = png(&chart);
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let (info, buf) = decode(&bytes);
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));

        let slot = (WIDTH - 2 * MARGIN) / 4;
        let centre = |i: u32| MARGIN + i * slot + slot / 2;
        // Near the top of the plot, only the spike's bar is drawn.
        let high_row = row_of(9.0, 11.0);
        assert_eq!(pixel(&buf, centre(3), high_row), BAR_HIGH);
        assert_eq!(pixel(&buf, centre(0), high_row), BACKGROUND);
        // A usual bucket is drawn in the usual colour just above the axis.
        assert_eq!(pixel(&buf, centre(0), HEIGHT - MARGIN - 2), BAR);
        // Between two bars, the band shows at its middle height.
        let gap_x = MARGIN + slot;
        assert_eq!(pixel(&buf, gap_x, row_of(1.0, 11.0)), BAND);
    }

    #[test]
    fn an_empty_window_still_draws() {
        let chart = Chart {
            bucket_minutes: 5,
            points_usd: vec![0.0; 12],
            band_low_usd: 0.0,
            band_high_usd: 0.0,
        };
        let (info, _) = decode(&png(&chart));
        assert_eq!(info.width, WIDTH);
    }
}
