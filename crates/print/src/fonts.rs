//! The embedded fonts, per-character font choice (Latin and Vietnamese → Noto Sans, Khmer →
//! Noto Sans Khmer, Thai → Noto Sans Thai), shaping with rustybuzz, measuring and wrapping.
//!
//! Text is cut into runs that each use one font, every run is shaped on its own (so Khmer
//! gets its subscript consonants and reordered vowels from the Khmer font's OpenType rules)
//! and the runs are set one after the other. Each glyph keeps the byte range of the text it
//! stands for, from which krilla writes the PDF's ToUnicode map, so copying or extracting
//! the text gives back the original characters.

use std::ops::Range;

use krilla::text::{Font, GlyphId, KrillaGlyph};

use crate::PrintError;

const DATA: [&[u8]; 4] = [
    include_bytes!("../fonts/NotoSans-Regular.ttf"),
    include_bytes!("../fonts/NotoSans-Bold.ttf"),
    include_bytes!("../fonts/NotoSansKhmer-Regular.ttf"),
    include_bytes!("../fonts/NotoSansThai-Regular.ttf"),
];

/// One of the embedded fonts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FontId {
    Regular = 0,
    Bold = 1,
    Khmer = 2,
    Thai = 3,
}

/// A piece of text in one font, shaped. Advances are in em (multiply by the size).
#[derive(Debug)]
pub(crate) struct ShapedRun {
    pub font: FontId,
    pub text: String,
    pub glyphs: Vec<KrillaGlyph>,
    pub advance: f32,
}

/// The fonts, ready for shaping (rustybuzz faces) and for the PDF (krilla fonts).
pub(crate) struct Fonts {
    faces: [rustybuzz::Face<'static>; 4],
    pdf: [Font; 4],
}

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fonts { Noto Sans, Noto Sans Bold, Noto Sans Khmer, Noto Sans Thai }")
    }
}

fn is_khmer(c: char) -> bool {
    matches!(c, '\u{1780}'..='\u{17FF}' | '\u{19E0}'..='\u{19FF}')
}

fn is_thai(c: char) -> bool {
    matches!(c, '\u{0E00}'..='\u{0E7F}')
}

/// A mark that belongs to the character before it: never the start of a run or of a line.
fn is_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}'
        | '\u{200C}' | '\u{200D}'
        // Thai vowels and tone marks written above or below the consonant.
        | '\u{0E31}' | '\u{0E34}'..='\u{0E3A}' | '\u{0E47}'..='\u{0E4E}'
        // Khmer dependent vowels, signs and the coeng (subscript) sign.
        | '\u{17B4}'..='\u{17D3}' | '\u{17DD}')
}

/// Characters that take the font of the text around them.
fn is_neutral(c: char) -> bool {
    c.is_whitespace() || c == '\u{200B}' || is_mark(c)
}

impl Fonts {
    /// Parses the embedded fonts.
    pub fn load() -> Result<Fonts, PrintError> {
        let face = |i: usize| {
            rustybuzz::Face::from_slice(DATA[i], 0).ok_or(PrintError::Font("an embedded font does not parse"))
        };
        let pdf = |i: usize| {
            Font::new(krilla::Data::from(DATA[i]), 0)
                .ok_or(PrintError::Font("an embedded font does not load"))
        };
        Ok(Fonts {
            faces: [face(0)?, face(1)?, face(2)?, face(3)?],
            pdf: [pdf(0)?, pdf(1)?, pdf(2)?, pdf(3)?],
        })
    }

    /// The krilla font.
    pub fn pdf_font(&self, id: FontId) -> Font {
        self.pdf[id as usize].clone()
    }

    fn has(&self, id: FontId, c: char) -> bool {
        self.faces[id as usize].glyph_index(c).is_some_and(|g| g.0 != 0)
    }

    /// The font for one character: by script, then any font that has it.
    fn pick(&self, c: char, bold: bool) -> FontId {
        let latin = if bold { FontId::Bold } else { FontId::Regular };
        let first = if is_khmer(c) {
            FontId::Khmer
        } else if is_thai(c) {
            FontId::Thai
        } else {
            latin
        };
        if self.has(first, c) {
            return first;
        }
        [latin, FontId::Khmer, FontId::Thai].into_iter().find(|f| self.has(*f, c)).unwrap_or(first)
    }

    /// Cuts text into runs of one font each (byte ranges).
    pub fn runs(&self, text: &str, bold: bool) -> Vec<(FontId, Range<usize>)> {
        let mut runs: Vec<(FontId, Range<usize>)> = Vec::new();
        for (i, c) in text.char_indices() {
            let end = i + c.len_utf8();
            if let Some((font, range)) = runs.last_mut() {
                let keep = if is_mark(c) {
                    true
                } else if is_neutral(c) {
                    self.has(*font, c) || c == '\u{200B}'
                } else {
                    self.pick(c, bold) == *font
                };
                if keep {
                    range.end = end;
                    continue;
                }
            }
            runs.push((self.pick(c, bold), i..end));
        }
        runs
    }

    /// Shapes one run of text in one font.
    fn shape_run(&self, font: FontId, text: &str) -> ShapedRun {
        let face = &self.faces[font as usize];
        let upem = face.units_per_em() as f32;
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        buffer.set_direction(rustybuzz::Direction::LeftToRight);
        let out = rustybuzz::shape(face, &[], buffer);
        let infos = out.glyph_infos();
        let positions = out.glyph_positions();
        let mut glyphs = Vec::with_capacity(infos.len());
        let mut advance = 0.0;
        for (i, (info, pos)) in infos.iter().zip(positions).enumerate() {
            let start = info.cluster as usize;
            // A cluster's text ends where the next cluster starts.
            let end = infos[i + 1..]
                .iter()
                .map(|n| n.cluster as usize)
                .find(|&c| c != start)
                .map_or(text.len(), |c| c.max(start));
            let x_advance = pos.x_advance as f32 / upem;
            advance += x_advance;
            glyphs.push(KrillaGlyph::new(
                GlyphId::new(info.glyph_id),
                x_advance,
                pos.x_offset as f32 / upem,
                pos.y_offset as f32 / upem,
                pos.y_advance as f32 / upem,
                start..end,
                None,
            ));
        }
        ShapedRun { font, text: text.to_owned(), glyphs, advance }
    }

    /// Shapes text, choosing a font per run.
    pub fn shape(&self, text: &str, bold: bool) -> Vec<ShapedRun> {
        self.runs(text, bold).into_iter().map(|(f, r)| self.shape_run(f, &text[r])).collect()
    }

    /// Width of text at a size, in points.
    pub fn width(&self, text: &str, size: f32, bold: bool) -> f32 {
        self.shape(text, bold).iter().map(|r| r.advance).sum::<f32>() * size
    }

    /// Wraps text into lines no wider than `width`: at spaces, and inside a word (between
    /// characters, never before a mark) only when the word alone is too wide. Newlines in the
    /// text start a new line. Never returns no line.
    pub fn wrap(&self, text: &str, size: f32, bold: bool, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for para in text.split('\n') {
            let mut line = String::new();
            for word in para.split([' ', '\t', '\u{200B}']).filter(|w| !w.is_empty()) {
                let candidate = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
                if self.width(&candidate, size, bold) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                if self.width(word, size, bold) <= width {
                    line = word.to_owned();
                    continue;
                }
                // The word alone is too wide: break it between characters.
                for c in word.chars() {
                    if !line.is_empty() && !is_mark(c) && !line.ends_with('\u{17D2}') {
                        let mut next = line.clone();
                        next.push(c);
                        if self.width(&next, size, bold) > width {
                            lines.push(std::mem::take(&mut line));
                        }
                    }
                    line.push(c);
                }
            }
            lines.push(line);
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_get_their_fonts() {
        let f = Fonts::load().unwrap();
        let text = "Angkor ក្រុមហ៊ុន អង្គរ / บริษัท สยาม (Sài Gòn)";
        let runs: Vec<(FontId, &str)> =
            f.runs(text, false).into_iter().map(|(id, r)| (id, &text[r])).collect();
        assert_eq!(
            runs,
            vec![
                (FontId::Regular, "Angkor "),
                (FontId::Khmer, "ក្រុមហ៊ុន អង្គរ "),
                (FontId::Regular, "/ "),
                (FontId::Thai, "บริษัท สยาม "),
                (FontId::Regular, "(Sài Gòn)"),
            ]
        );
        assert_eq!(f.runs("Bold", true)[0].0, FontId::Bold);
    }

    #[test]
    fn khmer_is_shaped_not_mapped_one_to_one() {
        let f = Fonts::load().unwrap();
        // ក្រុម: the coeng + RO becomes a subscript glyph written before the base, so the
        // glyphs are not the characters in order; every glyph keeps a piece of the text.
        let run = &f.shape("ក្រុម", false)[0];
        assert_eq!(run.font, FontId::Khmer);
        assert!(run.glyphs.iter().all(|g| g.glyph_id.to_u32() != 0), "no .notdef");
        assert!(run.glyphs.len() < "ក្រុម".chars().count());
        let covered: usize = run.glyphs.iter().map(|g| g.text_range.len()).sum();
        assert!(covered >= "ក្រុម".len());
    }

    #[test]
    fn wrapping_keeps_every_word_and_fits() {
        let f = Fonts::load().unwrap();
        let text = "Cambodian jasmine rice, wholly milled, 25 kg bags, Supercalifragilisticexpialidocious";
        let lines = f.wrap(text, 9.0, false, 80.0);
        assert!(lines.len() > 2);
        for l in &lines {
            assert!(f.width(l, 9.0, false) <= 80.0, "{l}");
        }
        assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
        assert_eq!(f.wrap("", 9.0, false, 80.0), vec![String::new()]);
    }
}
