// Japanese display formats for values the server sends raw (as crm/templatetags/ja.py writes
// them in templates): 2024年12月16日(月), 2024年12月16日(月) 10:15, ¥10,000. Times in Asia/Tokyo.

const WEEKDAYS = "日月火水木金土";

function tokyoParts(date) {
  const parts = {};
  for (const { type, value } of new Intl.DateTimeFormat("en-US", {
    timeZone: "Asia/Tokyo", year: "numeric", month: "numeric", day: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(date)) parts[type] = value;
  return parts;
}

function dateLabel(year, month, day) {
  const weekday = WEEKDAYS[new Date(Date.UTC(year, month - 1, day)).getUTCDay()];
  return `${year}年${month}月${day}日(${weekday})`;
}

// "2024-12-16" (a calendar day) or an ISO date-time (shown as its Tokyo day).
export function jaDate(iso) {
  if (!iso) return "";
  if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) {
    const [year, month, day] = iso.split("-").map(Number);
    return dateLabel(year, month, day);
  }
  const p = tokyoParts(new Date(iso));
  return dateLabel(Number(p.year), Number(p.month), Number(p.day));
}

export function jaDateTime(iso) {
  if (!iso) return "";
  const p = tokyoParts(new Date(iso));
  return `${dateLabel(Number(p.year), Number(p.month), Number(p.day))} ${p.hour}:${p.minute}`;
}

export function yen(amount) {
  if (amount === null || amount === undefined || amount === "") return "";
  return `¥${Number(amount).toLocaleString("en-US")}`;
}
