//! Paragraphs, boxes and table rows: wrapping and measuring text in a given width, and
//! placing it on a page.

use crate::draw::Page;
use crate::fonts::Fonts;

/// Size of box captions.
pub(crate) const CAPTION: f32 = 6.5;
/// Size of box content.
pub(crate) const BODY: f32 = 9.0;
/// Inner padding of a box.
pub(crate) const PAD: f32 = 3.5;
/// Height of a line of text, as a multiple of its size (room for Khmer above and below).
pub(crate) const LEADING: f32 = 1.28;
/// Baseline below the top of a line, as a multiple of the size.
const ASCENT: f32 = 0.98;

/// Height and baseline of a line of text, as multiples of its size: Khmer stacks vowels
/// above and subscript consonants below its letters, Thai writes tone marks over vowels,
/// so lines in those scripts get more room.
fn metrics(text: &str) -> (f32, f32) {
    if text.chars().any(|c| matches!(c, '\u{1780}'..='\u{17FF}' | '\u{19E0}'..='\u{19FF}')) {
        (1.75, 1.18)
    } else if text.chars().any(|c| matches!(c, '\u{0E00}'..='\u{0E7F}')) {
        (1.5, 1.1)
    } else {
        (LEADING, ASCENT)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Center,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    /// A line to sign on.
    Rule,
    /// A check box with its label; ticked or not.
    Check(bool),
    /// A list item: a bullet, and the text indented beside it.
    Bullet,
}

/// A paragraph: text of one size and weight, wrapped to the width it is given.
#[derive(Debug, Clone)]
pub(crate) struct P {
    pub kind: Kind,
    pub text: String,
    pub size: f32,
    pub bold: bool,
    pub align: Align,
    /// Space above, in points.
    pub gap: f32,
}

impl P {
    pub fn new(text: impl Into<String>) -> P {
        P { kind: Kind::Text, text: text.into(), size: BODY, bold: false, align: Align::Left, gap: 0.0 }
    }
    pub fn rule() -> P {
        P { kind: Kind::Rule, ..P::new("") }.gap(6.0)
    }
    pub fn check(checked: bool, label: impl Into<String>) -> P {
        P { kind: Kind::Check(checked), ..P::new(label) }.size(7.5)
    }
    pub fn bullet(text: impl Into<String>) -> P {
        P { kind: Kind::Bullet, ..P::new(text) }
    }
    pub fn bold(mut self) -> P {
        self.bold = true;
        self
    }
    pub fn size(mut self, size: f32) -> P {
        self.size = size;
        self
    }
    pub fn small(self) -> P {
        self.size(CAPTION)
    }
    pub fn center(mut self) -> P {
        self.align = Align::Center;
        self
    }
    pub fn right(mut self) -> P {
        self.align = Align::Right;
        self
    }
    pub fn gap(mut self, gap: f32) -> P {
        self.gap = gap;
        self
    }
}

/// A line placed relative to the top left of its paragraph block.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub kind: Kind,
    pub dx: f32,
    /// Top of the line's box.
    pub dy: f32,
    /// Height of the line's box.
    pub h: f32,
    /// Baseline below the top of the line's box.
    pub ascent: f32,
    pub size: f32,
    pub bold: bool,
    pub text: String,
    /// Width available (rules are drawn this long).
    pub w: f32,
    /// The first line of its paragraph.
    pub start: bool,
}

/// A block of placed lines and its height.
#[derive(Debug, Clone, Default)]
pub(crate) struct Block {
    pub lines: Vec<Placed>,
    pub height: f32,
}

impl Block {
    /// Draws the block with its top left corner at `(x, y)`.
    pub fn draw(&self, page: &mut Page, x: f32, y: f32) {
        for l in &self.lines {
            let top = y + l.dy;
            match l.kind {
                Kind::Text => page.text(x + l.dx, top + l.ascent, l.size, l.bold, l.text.clone()),
                Kind::Bullet => {
                    page.text(x + l.dx - l.size * 0.9, top + l.ascent, l.size, false, "•");
                    page.text(x + l.dx, top + l.ascent, l.size, l.bold, l.text.clone());
                }
                Kind::Rule => page.ops.push(crate::draw::Op::Line {
                    x1: x + l.dx,
                    y1: top + l.h - 1.0,
                    x2: x + l.dx + l.w,
                    y2: top + l.h - 1.0,
                    width: 0.5,
                    gray: 0,
                }),
                Kind::Check(checked) => {
                    let side = l.size * 0.95;
                    let bx = x + l.dx - side - 3.5;
                    let by = top + (l.h - side) / 2.0;
                    page.frame(bx, by, side, side, 0.6);
                    if checked {
                        // A letter, not only a drawing, so that extracted text shows the tick.
                        let s = side * 1.05;
                        page.text(bx + side * 0.18, by + side * 0.88, s, true, "X");
                    }
                    page.text(x + l.dx, top + l.ascent, l.size, l.bold, l.text.clone());
                }
            }
        }
    }
}

/// Lays out paragraphs in `width`, every size multiplied by `scale`.
pub(crate) fn lay(fonts: &Fonts, paras: &[P], width: f32, scale: f32) -> Block {
    let mut block = Block::default();
    let mut y = 0.0;
    for (i, p) in paras.iter().enumerate() {
        if i > 0 {
            y += p.gap * scale;
        }
        let size = p.size * scale;
        match p.kind {
            Kind::Rule => {
                block.lines.push(Placed {
                    kind: Kind::Rule,
                    dx: 0.0,
                    dy: y,
                    h: 2.0,
                    ascent: 0.0,
                    size,
                    bold: false,
                    text: String::new(),
                    w: width,
                    start: true,
                });
                y += 2.0;
            }
            Kind::Text | Kind::Check(_) | Kind::Bullet => {
                let indent = match p.kind {
                    Kind::Check(_) => size * 0.95 + 3.5,
                    Kind::Bullet => size * 0.9,
                    _ => 0.0,
                };
                let avail = width - indent;
                for (n, line) in fonts.wrap(&p.text, size, p.bold, avail).into_iter().enumerate() {
                    let lw = fonts.width(&line, size, p.bold);
                    let dx = indent
                        + match p.align {
                            Align::Left => 0.0,
                            Align::Center => ((avail - lw) / 2.0).max(0.0),
                            Align::Right => (avail - lw).max(0.0),
                        };
                    // Only the first line of a check box or list item carries the box or bullet.
                    let kind = if n == 0 { p.kind } else { Kind::Text };
                    let (leading, ascent) = metrics(&line);
                    let lh = size * leading;
                    block.lines.push(Placed {
                        kind,
                        dx,
                        dy: y,
                        h: lh,
                        ascent: size * ascent,
                        size,
                        bold: p.bold,
                        text: line,
                        w: avail,
                        start: n == 0,
                    });
                    y += lh;
                }
            }
        }
    }
    block.height = y;
    block
}

/// A numbered box of the form: caption at the top in small type, content below.
#[derive(Debug, Clone)]
pub(crate) struct FormBox {
    pub number: &'static str,
    pub caption: &'static str,
    pub content: Vec<P>,
    /// Set at the bottom of the box (a line to sign on and its caption).
    pub foot: Vec<P>,
}

impl FormBox {
    pub fn new(number: &'static str, caption: &'static str, content: Vec<P>) -> FormBox {
        FormBox { number, caption, content, foot: Vec::new() }
    }

    /// With a foot: a line to sign on, and its caption under it.
    pub fn signed(mut self, caption: &'static str) -> FormBox {
        self.foot = vec![P::rule(), P::new(caption).small().center().gap(1.0)];
        self
    }

    const NUMBER_W: f32 = 11.0;

    fn foot_height(&self, fonts: &Fonts, w: f32) -> f32 {
        if self.foot.is_empty() { 0.0 } else { 14.0 + lay(fonts, &self.foot, w - 2.0 * PAD, 1.0).height }
    }

    fn caption_block(&self, fonts: &Fonts, w: f32) -> Block {
        let indent = if self.number.is_empty() { 0.0 } else { Self::NUMBER_W };
        lay(fonts, &[P::new(self.caption).small()], w - 2.0 * PAD - indent, 1.0)
    }

    /// Height needed at a scale of the content.
    pub fn height(&self, fonts: &Fonts, w: f32, scale: f32) -> f32 {
        let cap = self.caption_block(fonts, w).height;
        let content = lay(fonts, &self.content, w - 2.0 * PAD, scale).height;
        PAD + cap + 2.5 + content + self.foot_height(fonts, w) + PAD
    }

    /// The largest scale (1 down to 0.45) at which the content fits in `max_h`; 0.45 if
    /// none.
    pub fn fit(&self, fonts: &Fonts, w: f32, max_h: f32) -> f32 {
        let mut scale: f32 = 1.0;
        while scale > 0.45 && self.height(fonts, w, scale) > max_h {
            scale -= 0.05;
        }
        scale.max(0.45)
    }

    /// Draws the frame, the caption and the content in the area `[x, y, w, h]`.
    pub fn draw(&self, page: &mut Page, fonts: &Fonts, [x, y, w, h]: [f32; 4], scale: f32) {
        page.frame(x, y, w, h, 0.8);
        let indent = if self.number.is_empty() { 0.0 } else { Self::NUMBER_W };
        if !self.number.is_empty() {
            page.text(x + PAD, y + PAD + CAPTION * ASCENT, CAPTION, true, format!("{}.", self.number));
        }
        let cap = self.caption_block(fonts, w);
        cap.draw(page, x + PAD + indent, y + PAD);
        lay(fonts, &self.content, w - 2.0 * PAD, scale).draw(page, x + PAD, y + PAD + cap.height + 2.5);
        if !self.foot.is_empty() {
            let foot = lay(fonts, &self.foot, w - 2.0 * PAD, 1.0);
            foot.draw(page, x + PAD, y + h - PAD - foot.height);
        }
    }
}

/// One cell's lines of a table row; rows can be split between pages at line boundaries.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub cells: Vec<Block>,
}

/// Padding above and below a row's text.
pub(crate) const ROW_PAD: f32 = 3.0;

impl Row {
    pub fn height(&self) -> f32 {
        self.cells.iter().map(|c| c.height).fold(0.0, f32::max) + 2.0 * ROW_PAD
    }

    /// Splits the row so that the first part is at most `h` high. `None` when not every cell
    /// keeps at least its first line.
    pub fn split(&self, h: f32) -> Option<(Row, Row)> {
        let limit = h - 2.0 * ROW_PAD;
        let mut first = Vec::new();
        let mut rest = Vec::new();
        let mut all = true;
        for cell in &self.cells {
            let (keep, take): (Vec<Placed>, Vec<Placed>) =
                cell.lines.iter().cloned().partition(|l| l.dy + l.h <= limit + 0.01);
            all &= cell.lines.is_empty() || !keep.is_empty();
            let kh = keep.iter().map(|l| l.dy + l.h).fold(0.0, f32::max);
            let shift = take.first().map_or(0.0, |l| l.dy);
            let take: Vec<Placed> = take.into_iter().map(|l| Placed { dy: l.dy - shift, ..l }).collect();
            let th = take.iter().map(|l| l.dy + l.h).fold(0.0, f32::max);
            first.push(Block { lines: keep, height: kh });
            rest.push(Block { lines: take, height: th });
        }
        all.then_some((Row { cells: first }, Row { cells: rest }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_row_keeps_every_line_and_starts_the_rest_at_the_top() {
        let fonts = Fonts::load().unwrap();
        let row = Row {
            cells: vec![
                lay(&fonts, &[P::new("1")], 20.0, 1.0),
                lay(&fonts, &[P::new("word ".repeat(40))], 60.0, 1.0),
                Block::default(),
            ],
        };
        let lines = |r: &Row| r.cells.iter().map(|c| c.lines.len()).sum::<usize>();
        let (first, rest) = row.split(60.0).unwrap();
        assert!(first.height() <= 60.0);
        assert_eq!(lines(&first) + lines(&rest), lines(&row));
        assert_eq!(first.cells[0].lines[0].text, "1");
        assert!(rest.cells[0].lines.is_empty());
        assert_eq!(rest.cells[1].lines[0].dy, 0.0);
        // Too little room for the first line of every cell: no split.
        assert!(row.split(2.0 * ROW_PAD + 5.0).is_none());
    }

    #[test]
    fn lines_in_khmer_and_thai_get_more_room() {
        let fonts = Fonts::load().unwrap();
        let h = |t: &str| lay(&fonts, &[P::new(t)], 500.0, 1.0).height;
        assert!(h("ក្រុមហ៊ុន") > h("บริษัท"));
        assert!(h("บริษัท") > h("Company"));
    }
}
