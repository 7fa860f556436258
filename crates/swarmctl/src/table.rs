//! Column layout for every table and `key : value` block: tab-separated text run through an
//! elastic-tabstop writer (a port of Go's tabwriter), so the spacing is what SwarmKit's CLI
//! prints. Trailing blanks are dropped from each line.

use std::io::Write;

use tabwriter::TabWriter;

/// Minimum column width and padding of one kind of output.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub min_width: usize,
    pub padding: usize,
}

/// `node ls`, `service ls`, `task ls`: columns two spaces apart.
pub const LIST: Layout = Layout {
    min_width: 0,
    padding: 2,
};

/// Task tables under `service inspect` and `node inspect`: columns four spaces apart.
pub const TASKS: Layout = Layout {
    min_width: 4,
    padding: 4,
};

/// `key : value` blocks of the inspect commands.
pub const SUMMARY: Layout = Layout {
    min_width: 8,
    padding: 8,
};

/// A header row and the row of dashes under it (each as long as its header), tab-separated.
pub fn header(columns: &[&str]) -> String {
    let dashes: Vec<String> = columns.iter().map(|c| "-".repeat(c.len())).collect();
    format!("{}\n{}\n", columns.join("\t"), dashes.join("\t"))
}

/// Aligns tab-separated `text` into columns.
pub fn render(layout: Layout, text: &str) -> String {
    let mut tw = TabWriter::new(Vec::new())
        .minwidth(layout.min_width)
        .padding(layout.padding);
    let aligned = match tw.write_all(text.as_bytes()) {
        Ok(()) => tw
            .into_inner()
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
        Err(_) => None,
    };
    // Writing to memory cannot fail; should it ever, plain text beats no text.
    let aligned = aligned.unwrap_or_else(|| text.replace('\t', "  "));
    let lines: Vec<&str> = aligned
        .split('\n')
        .map(|l| l.trim_end_matches(' '))
        .collect();
    lines.join("\n")
}

/// Builds one table: header, dashes, then one row per entry of `rows`.
pub fn table(layout: Layout, columns: &[&str], rows: &[Vec<String>]) -> String {
    rows_under(layout, header(columns), rows)
}

/// Like [`table`], with the underline row given (where the walkthrough's differs from the
/// header's lengths).
pub fn table_underlined(
    layout: Layout,
    columns: &[&str],
    underline: &[&str],
    rows: &[Vec<String>],
) -> String {
    let head = format!("{}\n{}\n", columns.join("\t"), underline.join("\t"));
    rows_under(layout, head, rows)
}

fn rows_under(layout: Layout, mut text: String, rows: &[Vec<String>]) -> String {
    for row in rows {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    render(layout, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_underlines_each_column() {
        assert_eq!(header(&["ID", "Name"]), "ID\tName\n--\t----\n");
    }

    #[test]
    fn list_layout_pads_two_and_trims_trailing_blanks() {
        let rows = vec![
            vec!["abc".to_string(), "x".to_string(), "".to_string()],
            vec!["a".to_string(), "longer".to_string(), "last".to_string()],
        ];
        let out = table(LIST, &["ID", "Name", "Status"], &rows);
        assert_eq!(
            out,
            "ID   Name    Status\n--   ----    ------\nabc  x\na    longer  last\n"
        );
    }

    #[test]
    fn summary_layout_aligns_colons() {
        let out = render(SUMMARY, "ID\t: x\nReplicas\t: 1\nTemplate\t\n");
        assert_eq!(out, "ID              : x\nReplicas        : 1\nTemplate\n");
    }
}
