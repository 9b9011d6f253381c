//! A page as a list of drawing operations, laid out first and written to the PDF after, so
//! that the layout can be checked (nothing outside the page) and page counts are known
//! before anything is drawn.

use krilla::Document;
use krilla::color::luma;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::KrillaGlyph;

use crate::PrintError;
use crate::fonts::Fonts;

/// A4 portrait, in points.
pub(crate) const PAGE_W: f32 = 595.28;
pub(crate) const PAGE_H: f32 = 841.89;

/// One drawing operation. Coordinates in points from the top left corner; `y` of text is
/// its baseline.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: String,
    },
    /// A stroked rectangle.
    Frame {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        width: f32,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
        gray: u8,
    },
    /// A filled rectangle in a shade of grey (0 black, 255 white).
    Fill {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        gray: u8,
    },
    /// Filled squares of a QR code: `(column, row, run length)` in modules, module size `m`.
    Modules {
        x: f32,
        y: f32,
        m: f32,
        runs: Vec<(u32, u32, u32)>,
    },
}

/// A laid-out page.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub ops: Vec<Op>,
}

impl Page {
    pub fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: impl Into<String>) {
        let text = text.into();
        if !text.is_empty() {
            self.ops.push(Op::Text { x, y, size, bold, text });
        }
    }
    pub fn frame(&mut self, x: f32, y: f32, w: f32, h: f32, width: f32) {
        self.ops.push(Op::Frame { x, y, w, h, width });
    }
    pub fn hline(&mut self, x1: f32, x2: f32, y: f32, width: f32) {
        self.ops.push(Op::Line { x1, y1: y, x2, y2: y, width, gray: 0 });
    }
    pub fn vline(&mut self, x: f32, y1: f32, y2: f32, width: f32) {
        self.ops.push(Op::Line { x1: x, y1, x2: x, y2, width, gray: 0 });
    }
    pub fn light_hline(&mut self, x1: f32, x2: f32, y: f32) {
        self.ops.push(Op::Line { x1, y1: y, x2, y2: y, width: 0.4, gray: 150 });
    }
    pub fn fill(&mut self, x: f32, y: f32, w: f32, h: f32, gray: u8) {
        self.ops.push(Op::Fill { x, y, w, h, gray });
    }

    /// The text on the page in drawing order, for tests.
    #[cfg(test)]
    pub fn texts(&self) -> Vec<&str> {
        self.ops
            .iter()
            .filter_map(|o| match o {
                Op::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

fn gray(g: u8) -> krilla::paint::Paint {
    luma::Color::new(g).into()
}

fn draw(s: &mut Surface<'_>, fonts: &Fonts, op: &Op) {
    match op {
        Op::Text { x, y, size, bold, text } => {
            s.set_stroke(None);
            s.set_fill(Some(Fill::default()));
            let mut cx = *x;
            for run in fonts.shape(text, *bold) {
                let (glyphs, marks) = split_marks(&run.glyphs);
                let font = fonts.pdf_font(run.font);
                s.draw_glyphs(Point::from_xy(cx, *y), &glyphs, font.clone(), &run.text, *size, false);
                for (pen, mark) in marks {
                    let at = Point::from_xy(cx + pen * size, *y);
                    s.draw_glyphs(at, std::slice::from_ref(&mark), font.clone(), &run.text, *size, true);
                }
                cx += run.advance * size;
            }
        }
        Op::Frame { x, y, w, h, width } => {
            let mut pb = PathBuilder::new();
            if let Some(r) = Rect::from_xywh(*x, *y, *w, *h) {
                pb.push_rect(r);
            }
            if let Some(path) = pb.finish() {
                s.set_fill(None);
                s.set_stroke(Some(Stroke { paint: gray(0), width: *width, ..Default::default() }));
                s.draw_path(&path);
            }
        }
        Op::Line { x1, y1, x2, y2, width, gray: g } => {
            let mut pb = PathBuilder::new();
            pb.move_to(*x1, *y1);
            pb.line_to(*x2, *y2);
            if let Some(path) = pb.finish() {
                s.set_fill(None);
                s.set_stroke(Some(Stroke { paint: gray(*g), width: *width, ..Default::default() }));
                s.draw_path(&path);
            }
        }
        Op::Fill { x, y, w, h, gray: g } => {
            let mut pb = PathBuilder::new();
            if let Some(r) = Rect::from_xywh(*x, *y, *w, *h) {
                pb.push_rect(r);
            }
            if let Some(path) = pb.finish() {
                s.set_stroke(None);
                s.set_fill(Some(Fill { paint: gray(*g), ..Default::default() }));
                s.draw_path(&path);
            }
        }
        Op::Modules { x, y, m, runs } => {
            // One path of rectangles, one per horizontal run of dark modules. Rows overlap
            // by a hair so that no light seam shows between them when rasterised.
            let mut pb = PathBuilder::new();
            for &(col, row, len) in runs {
                if let Some(r) =
                    Rect::from_xywh(x + col as f32 * m, y + row as f32 * m, len as f32 * m, m + 0.02)
                {
                    pb.push_rect(r);
                }
            }
            if let Some(path) = pb.finish() {
                s.set_stroke(None);
                s.set_fill(Some(Fill::default()));
                s.draw_path(&path);
            }
        }
    }
}

/// Splits a shaped run into the glyphs written as text and the marks drawn as outlines,
/// each mark with its pen position (in em from the start of the run).
///
/// A mark here is a glyph of no advance that follows another glyph of the same cluster: a
/// Khmer subscript consonant or vowel sign, a Thai tone mark, a combining accent. It is
/// placed with an offset, often backwards under or over its base; written as text it would
/// end where the following glyph does not start, and text extraction (poppler's
/// `pdftotext`) reads that gap as a space in the middle of a word. The cluster's text is
/// carried by its first glyph, so nothing is lost from the extracted text.
fn split_marks(glyphs: &[KrillaGlyph]) -> (Vec<KrillaGlyph>, Vec<(f32, KrillaGlyph)>) {
    let mut text = Vec::with_capacity(glyphs.len());
    let mut marks = Vec::new();
    let mut pen = 0.0;
    for (i, g) in glyphs.iter().enumerate() {
        let same_cluster = i > 0 && glyphs[i - 1].text_range == g.text_range;
        if same_cluster && g.x_advance == 0.0 {
            marks.push((pen, g.clone()));
        } else {
            text.push(g.clone());
        }
        pen += g.x_advance;
    }
    (text, marks)
}

/// Writes the pages into a PDF.
pub(crate) fn write_pdf(pages: &[Page], fonts: &Fonts, title: &str) -> Result<Vec<u8>, PrintError> {
    let mut doc = Document::new();
    doc.set_metadata(
        krilla::metadata::Metadata::new()
            .title(title.to_owned())
            .language("en".to_owned())
            .creator("OriginLink".to_owned()),
    );
    for p in pages {
        let settings =
            PageSettings::from_wh(PAGE_W, PAGE_H).ok_or(PrintError::Pdf("page size".to_owned()))?;
        let mut page = doc.start_page_with(settings);
        let mut surface = page.surface();
        for op in &p.ops {
            draw(&mut surface, fonts, op);
        }
        surface.finish();
        page.finish();
    }
    doc.finish().map_err(|e| PrintError::Pdf(format!("{e:?}")))
}
