package main

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// plainTextErrors answers every error as one line of text/plain with its
// status code. The request logger logs it.
func plainTextErrors(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}

		code, text := http.StatusInternalServerError, http.StatusText(http.StatusInternalServerError)
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
			if msg, ok := he.Message.(string); ok {
				text = msg
			} else {
				text = http.StatusText(code)
			}
		}
		if err := c.String(code, text+"\n"); err != nil {
			logger.Debug("writing error response", "error", err)
		}
	}
}

// requestLogger logs one line per request: Debug when it succeeded, Warn for
// a client error, Error with the cause for a server-side failure.
func requestLogger(logger *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		Skipper:     isProbe,
		HandleError: true,
		LogError:    true,
		LogMethod:   true,
		LogURIPath:  true,
		LogStatus:   true,
		LogLatency:  true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			attrs := []any{"method", v.Method, "path", v.URIPath, "status", v.Status,
				"latency", v.Latency.Round(time.Microsecond)}
			attrs = append(attrs, requestAttrs(c)...)
			level := slog.LevelDebug
			switch {
			case v.Status >= http.StatusInternalServerError:
				level = slog.LevelError
				attrs = append(attrs, "error", v.Error)
			case v.Status >= http.StatusBadRequest:
				level = slog.LevelWarn
			}
			logger.Log(c.Request().Context(), level, "request", attrs...)

			return nil
		},
	})
}
