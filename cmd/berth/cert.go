package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newCertCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "cert",
		Aliases: []string{"certs", "certificate", "certificates"},
		Short:   "Manage the TLS certificates HTTP rules serve",
	}

	var certFile, keyFile string
	add := &cobra.Command{
		Use:     "add NAME --cert FILE --key FILE",
		Short:   "Upload a certificate (PEM, with its chain) and its private key",
		Example: "  berth cert add shop --cert fullchain.pem --key privkey.pem",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			certPEM, err := os.ReadFile(certFile)
			if err != nil {
				return fmt.Errorf("read the certificate: %w", err)
			}
			keyPEM, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("read the key: %w", err)
			}
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			cert, err := cl.CreateCertificate(cmd.Context(), team, client.CertificateSpec{
				Name: args[0], Certificate: string(certPEM), Key: string(keyPEM),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Added certificate %s", cert.Name)
			if len(cert.Domains) > 0 {
				fmt.Fprintf(c.out(), " for %s", strings.Join(cert.Domains, ", "))
			}
			if !cert.NotAfter.IsZero() {
				fmt.Fprintf(c.out(), ", valid until %s", cert.NotAfter.Format(time.DateOnly))
			}
			fmt.Fprintf(c.out(), ". Use it with \"berth rule http add DOMAIN ... --cert %s\".\n", cert.Name)
			return nil
		},
	}
	add.Flags().StringVar(&certFile, "cert", "", "PEM file of the certificate and its chain")
	add.Flags().StringVar(&keyFile, "key", "", "PEM file of the private key")
	_ = add.MarkFlagRequired("cert")
	_ = add.MarkFlagRequired("key")

	var format string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the team's certificates",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			certs, err := cl.ListCertificates(cmd.Context(), team)
			if err != nil {
				return err
			}
			return c.render(format, certs, func() {
				t := newTable("NAME", "DOMAINS", "EXPIRES", "ADDED")
				for _, cert := range certs {
					t.row(cert.Name, orDash(strings.Join(cert.Domains, ",")), expiry(cert.NotAfter), ago(cert.CreatedAt))
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(list, &format)

	cmd.AddCommand(add, list, &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove a certificate",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			if err := cl.DeleteCertificate(cmd.Context(), team, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Removed certificate %s.\n", args[0])
			return nil
		},
	})
	return cmd
}

// expiry shows a certificate's end date and flags one that has passed.
func expiry(t time.Time) cell {
	if t.IsZero() {
		return cell{text: "-"}
	}
	s := t.Format(time.DateOnly)
	switch {
	case time.Until(t) < 0:
		return cell{s + " (expired)", colorRed}
	case time.Until(t) < 14*24*time.Hour:
		return cell{s, colorYellow}
	}
	return cell{text: s}
}
