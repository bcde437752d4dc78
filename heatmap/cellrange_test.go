package heatmap

// cellRange is the time range of a cell in seconds from the capture start:
// the from and to of the range flame graph the UI draws for that cell
// (web/static computes the same from the JSON's column_seconds and rows).
func cellRange(h *Heatmap, col, row int) (from, to float64) {
	base := float64(col) * h.ColumnSeconds
	cell := h.ColumnSeconds / float64(h.Rows)
	return base + float64(row)*cell, base + float64(row+1)*cell
}

// CellRange gives the external tests (real_test.go) cellRange; it exists
// in test builds only.
var CellRange = cellRange
