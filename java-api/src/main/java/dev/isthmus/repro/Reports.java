package dev.isthmus.repro;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The JSON form of a {@link Report}: pretty-printed, in snake_case ({@code x_label}), with NaN and
 * infinities written as the strings {@code "NaN"} and {@code "Infinity"} (plain JSON has no such
 * numbers, and a diverged run must still be written).
 */
public final class Reports {
    private static final ObjectMapper JSON = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

    private Reports() {}

    /** Writes {@code report} to {@code file}, replacing it. */
    public static void write(Report report, Path file) throws IOException {
        Files.writeString(file, JSON.writeValueAsString(report) + "\n");
    }

    /** Reads a report written by {@link #write}; the verdict is checked against the criteria. */
    public static Report read(Path file) throws IOException {
        return JSON.readValue(file.toFile(), Report.class);
    }
}
