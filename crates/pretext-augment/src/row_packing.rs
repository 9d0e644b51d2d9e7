//! How a table row reaches the table encoder: its values and missing flags packed into one
//! row of `2·width` floats (`pretext_nn::TableMlp` reads that layout).

/// Packs rows for the table encoder: `values` and `missing` (`rows × width`, row-major; NaN
/// or anything where missing) become `rows × 2·width` floats — the values with 0 in missing
/// cells, then the flags as 0/1.
pub fn pack_rows(values: &[f32], missing: &[bool], width: usize) -> Vec<f32> {
    let mut packed = Vec::with_capacity(values.len() * 2);
    for (row_values, row_missing) in values
        .chunks(width.max(1))
        .zip(missing.chunks(width.max(1)))
    {
        packed.extend(
            row_values
                .iter()
                .zip(row_missing)
                .map(|(&value, &absent)| if absent { 0.0 } else { value }),
        );
        packed.extend(
            row_missing
                .iter()
                .map(|&absent| f32::from(u8::from(absent))),
        );
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_zeroes_missing_cells_and_appends_the_flags() {
        let values = [1.0, f32::NAN, 3.0, 4.0];
        let missing = [false, true, false, false];
        assert_eq!(
            pack_rows(&values, &missing, 2),
            vec![1.0, 0.0, 0.0, 1.0, 3.0, 4.0, 0.0, 0.0]
        );
    }
}
