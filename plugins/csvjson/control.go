package csvjson

import (
	"fmt"
	"strconv"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/dmsbridge/dmsbridge/plugins/dmsjson"
	"github.com/dmsbridge/dmsbridge/plugins/tabledef"
)

// tableDefNames maps DMS column types to the type names DMS writes in
// control.table-def (observed: INT32, STRING, WSTRING, TIMESTAMP).
var tableDefNames = map[tabledef.Type]string{
	tabledef.TypeInt1: "INT8", tabledef.TypeInt2: "INT16", tabledef.TypeInt4: "INT32", tabledef.TypeInt8: "INT64",
	tabledef.TypeUInt1: "UINT8", tabledef.TypeUInt2: "UINT16", tabledef.TypeUInt4: "UINT32", tabledef.TypeUInt8: "UINT64",
	tabledef.TypeDateTime: "TIMESTAMP", tabledef.TypeByte: "BYTES", tabledef.TypeDate: "DATE", tabledef.TypeTime: "TIME",
	tabledef.TypeNumeric: "NUMERIC", tabledef.TypeReal4: "REAL4", tabledef.TypeReal8: "REAL8", tabledef.TypeString: "STRING",
	tabledef.TypeBlob: "BLOB", tabledef.TypeClob: "CLOB", tabledef.TypeBoolean: "BOOLEAN",
}

// tableDefJSON renders a table's control.table-def object.
func tableDefJSON(t *tabledef.Table) []byte {
	b := []byte(`{"columns":{`)
	for i, c := range t.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(dmsjson.AppendStringNoCheck(b, c.Name), `:{"type":`...)
		b = dmsjson.AppendStringNoCheck(b, tableDefNames[c.Type])
		switch c.Type {
		case tabledef.TypeString, tabledef.TypeByte:
			if c.Length > 0 {
				b = strconv.AppendInt(append(b, `,"length":`...), int64(c.Length), 10)
			}
		case tabledef.TypeNumeric:
			b = strconv.AppendInt(append(b, `,"precision":`...), int64(c.Precision), 10)
			b = strconv.AppendInt(append(b, `,"scale":`...), int64(c.Scale), 10)
		}
		b = strconv.AppendBool(append(b, `,"nullable":`...), c.Nullable)
		b = append(b, '}')
	}
	b = append(b, '}')
	if len(t.PrimaryKey) > 0 {
		b = append(b, `,"primary-key":[`...)
		for j, i := range t.PrimaryKey {
			if j > 0 {
				b = append(b, ',')
			}
			b = dmsjson.AppendStringNoCheck(b, t.Columns[i].Name)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// control turns a control signal from the input into DMS control records:
// table-start (a table's full load begins) gives drop-table and/or
// create-table per target_table_prep_mode; cdc-start (the CDC phase begins)
// gives create-table for awsdms_apply_exceptions, then for every table of
// the definition in order, as a DMS CDC task does.
func (w *worker) control(m *service.Message, ctl string) {
	var recs []ctlRec
	switch ctl {
	case "table-start":
		schema, _ := metaString(m, metaSchema)
		table, _ := metaString(m, metaTable)
		p := w.c.bySchema[schema][table]
		if p == nil {
			w.fail(m, nil, reasonUnknownTbl, fmt.Sprintf(": table-start signal for unknown table: schema %q table %q is not in the table definition", schema, table))
			return
		}
		switch w.c.o.prepMode {
		case "drop-and-create":
			recs = []ctlRec{{p, opDropTable}, {p, opCreateTable}}
		case "truncate":
			recs = []ctlRec{{p, opCreateTable}}
		}
	case "cdc-start":
		recs = append(recs, ctlRec{w.c.applyExceptions, opCreateTable})
		for _, p := range w.c.plans {
			recs = append(recs, ctlRec{p, opCreateTable})
		}
	default:
		w.fail(m, nil, reasonBadMessage, fmt.Sprintf(": dms_control %q is neither table-start nor cdc-start", ctl))
		return
	}
	outs := make([]*service.Message, len(recs))
	for i := range recs {
		outs[i] = m
		if i > 0 {
			outs[i] = m.Copy()
		}
	}
	for i, r := range recs {
		p, op := r.p, r.op
		dst := w.tmp[:0]
		dst = append(dst, '{')
		if w.c.o.includeControl {
			dst = append(dst, `"control":`...)
			if op == opCreateTable {
				dst = append(dst, `{"table-def":`...)
				dst = append(dst, p.tableDef...)
				dst = append(dst, '}')
			} else {
				dst = append(dst, '{', '}')
			}
			dst = append(dst, ',')
		}
		dst = append(dst, `"metadata":{"timestamp":`...)
		dst = append(dst, w.ts...)
		dst = append(dst, p.metaA[op]...)
		if w.c.o.includePartitionValue {
			dst = append(dst, `,"partition-key-value":`...)
			dst = dmsjson.AppendStringNoCheck(dst, w.c.o.taskID)
		}
		dst = append(dst, p.metaB...)
		dst = append(dst, '}', '}')
		w.tmp = dst
		start := len(w.slab)
		if w.c.o.pretty {
			w.slab = indent(w.slab, dst)
		} else {
			w.slab = append(append(w.slab, dst...), '\n')
		}
		end := len(w.slab)
		outs[i].SetBytes(w.slab[start:end:end])
		outs[i].MetaSetMut(metaPartitionKey, p.ctlKeyAny)
		outs[i].MetaSetMut(metaOperation, p.opAny[op])
		if ctl == "cdc-start" {
			outs[i].MetaSetMut(metaSchema, p.schemaAny)
			outs[i].MetaSetMut(metaTable, p.nameAny)
		}
		if p.idx >= 0 { // awsdms_apply_exceptions is not a table of the definition
			w.rowCounts[p.idx*numOps+op]++
		}
	}
	w.controls = append(w.controls, controlOut{msg: m, out: outs})
}

// ctlRec is one control record to write.
type ctlRec struct {
	p  *tablePlan
	op int
}

// applyExceptionsTable is DMS's awsdms_apply_exceptions control table, as its
// create-table record describes it (schema "", no primary key).
var applyExceptionsTable = tabledef.Table{Name: "awsdms_apply_exceptions", Columns: []tabledef.Column{
	{Name: "TASK_NAME", Type: tabledef.TypeString, Length: 128},
	{Name: "TABLE_OWNER", Type: tabledef.TypeString, Length: 128},
	{Name: "TABLE_NAME", Type: tabledef.TypeString, Length: 128},
	{Name: "ERROR_TIME", Type: tabledef.TypeDateTime},
	{Name: "STATEMENT", Type: tabledef.TypeString},
	{Name: "ERROR", Type: tabledef.TypeString},
}}
