package org.rsnetedge.core;

import com.google.gson.JsonElement;
import com.google.gson.JsonPrimitive;
import java.util.regex.Pattern;

/** JSON type checks that mirror Python's json module + isinstance checks. */
final class Json {
  private static final Pattern INT_LITERAL = Pattern.compile("-?\\d+");

  /** The limits of rsnet_edge/jsonio.py: size of one JSON text (UTF-8 bytes), nesting, digits. */
  static final int MAX_BYTES = 16 << 20;
  static final int MAX_DEPTH = 64;
  static final int MAX_DIGITS = 100;

  private Json() {}

  /**
   * Why {@code text} (from {@code name}) is refused before any parser sees it, or null: over
   * {@link #MAX_BYTES} UTF-8 bytes, a run of more than {@link #MAX_DIGITS} digits outside strings,
   * or nesting deeper than {@link #MAX_DEPTH} (checked in that order; the messages of
   * rsnet_edge.jsonio, tests/data/bad_manifest_vectors.json "json_cases"). Linear time, no
   * recursion: a parser would overflow the stack on 200,000 nested brackets.
   */
  static String shapeError(String text, String name) {
    return shapeError(text, name, MAX_BYTES);
  }

  /** {@link #shapeError(String, String)} with another size limit (an RSFOLD header's 64 MiB). */
  static String shapeError(String text, String name, long maxBytes) {
    long bytes = 0;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c < 0x80) {
        bytes += 1;
      } else if (c < 0x800) {
        bytes += 2;
      } else if (Character.isHighSurrogate(c) && i + 1 < text.length()
          && Character.isLowSurrogate(text.charAt(i + 1))) {
        bytes += 4;
        i++;
      } else {
        bytes += 3;
      }
    }
    if (bytes > maxBytes) return name + " is over the " + maxBytes + "-byte limit for a JSON file";
    int run = 0;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c == '"') {
        i = stringEnd(text, i);
        run = 0;
        continue;
      }
      run = c >= '0' && c <= '9' ? run + 1 : 0;
      if (run > MAX_DIGITS) return name + " has a number longer than " + MAX_DIGITS + " digits";
    }
    int depth = 0;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c == '"') {
        i = stringEnd(text, i);
      } else if (c == '[' || c == '{') {
        if (++depth > MAX_DEPTH) return name + " is nested deeper than " + MAX_DEPTH + " levels";
      } else if (c == ']' || c == '}') {
        depth--;
      }
    }
    return null;
  }

  /**
   * The index of the last character of the string that starts with the quote at {@code i}: its
   * closing quote, or the end of the text when it is unterminated (a lone backslash at the very
   * end is not part of it). Escapes ({@code \\} + any character) are skipped.
   */
  private static int stringEnd(String text, int i) {
    int j = i + 1;
    while (j < text.length()) {
      char c = text.charAt(j);
      if (c == '"') return j;
      if (c == '\\') {
        if (j + 1 >= text.length()) return j - 1;
        j += 2;
      } else {
        j++;
      }
    }
    return text.length() - 1;
  }

  /** A JSON number written without fraction or exponent (Python json gives an int). */
  static boolean isInt(JsonElement e) {
    if (e == null || !e.isJsonPrimitive()) return false;
    JsonPrimitive p = e.getAsJsonPrimitive();
    return p.isNumber() && INT_LITERAL.matcher(p.getAsString()).matches()
        && p.getAsString().length() < 10;
  }

  /** A finite JSON number (Python: int or float, not bool, math.isfinite). */
  static boolean isNum(JsonElement e) {
    if (e == null || !e.isJsonPrimitive()) return false;
    JsonPrimitive p = e.getAsJsonPrimitive();
    if (!p.isNumber()) return false;
    double d = p.getAsDouble();
    return !Double.isNaN(d) && !Double.isInfinite(d);
  }

  static boolean isString(JsonElement e) {
    return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isString();
  }

  static boolean isNull(JsonElement e) {
    return e == null || e.isJsonNull();
  }

  /** Python-ish repr for error messages. */
  static String repr(JsonElement e) {
    return e == null ? "None" : e.toString();
  }

  /** Python repr() of a parsed JSON value (None, True, 'text', 2, [..]), for messages that read as Python's. */
  static String pyRepr(JsonElement e) {
    if (e == null || e.isJsonNull()) return "None";
    if (e.isJsonPrimitive()) {
      JsonPrimitive p = e.getAsJsonPrimitive();
      if (p.isBoolean()) return p.getAsBoolean() ? "True" : "False";
      if (p.isString()) return pyStr(p.getAsString());
      return p.getAsString();
    }
    return e.toString();
  }

  /** Python repr() of a str: single quotes unless the text has one and no double quote. */
  static String pyStr(String s) {
    if (s.indexOf('\'') >= 0 && s.indexOf('"') < 0) return "\"" + s + "\"";
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'";
  }

  /** Python repr() of a tuple of str: ('a', 'b'). */
  static String pyTuple(java.util.List<String> items) {
    StringBuilder sb = new StringBuilder("(");
    for (int i = 0; i < items.size(); i++) sb.append(i > 0 ? ", " : "").append(pyStr(items.get(i)));
    return sb.append(items.size() == 1 ? ",)" : ")").toString();
  }
}
